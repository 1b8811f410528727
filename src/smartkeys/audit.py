"""The owner's audit trail: what every session key of an account did, rebuilt from on-chain events.

:func:`build_audit` reads the account's logs (``SessionGranted``, ``SessionUsed``, ``SessionRevoked``,
``AllSessionsRevoked``, ``SessionRotated``, ``SessionRenewed``) with ``eth_getLogs`` in block chunks, adds
the refusals an SDK recorded in a :class:`~smartkeys.journal.RefusalJournal` (refused uses leave nothing on
chain), and returns an :class:`AuditReport`:

- per session (:class:`SessionAudit`): the grant (block, time, tx, epoch) and its decoded policy in human
  form, each use (calls with target, selector and function name, native value, token amounts), spent and
  remaining per asset, cumulative and per period (:class:`AssetAudit`), uses, refusals, the revocation
  (single or by epoch), the status at ``now`` and flags;
- a timeline of :class:`AuditEntry` (one per event, in chain order) with what each left spent/remaining.

A rotation or renewal (``rotate`` / ``renew`` entries) grants a successor session that carries on the old one's
counters: the successor's spent, periods and uses start from the predecessor's (``replaces``), and the
predecessor is revoked (``Revocation.kind`` ``"rotated"`` / ``"renewed"``, ``replaced_by``).

The rebuilt counters equal the contract's (``sessionStatus`` / ``sessionLedger``) as long as the scanned
range starts at or before the session's last grant. Known limits of an events-only audit:

- ``SessionUsed`` carries the total native value of a use, not each call's: the per-call cap check of
  ``edge_of_policy`` applies to single-call uses only.
- The status word counts uses only when the policy limits them (``max_uses != 0``); the audit counts every
  use, and compares with the contract only for limited sessions.
- Gas charged to a session has no event (logging it cost 1.4k gas per user operation): the ``gas`` asset of a
  session is read from the contract's status word (``sessionStatus``) at ``to_block``, so it has a total
  but no per-use history. Revoking keeps the status word (only its revoked bit is set), so a revoked
  session's gas is read the same way.

Flags (:class:`AuditFlag`, thresholds in :class:`AuditThresholds`):

- ``survived_redelegation``: a live session granted before a change of the account's EIP-7702 delegation that
  the SDK can see (historical code, probed; :func:`smartkeys.account.delegation_change_since`);
- ``standing_allowances``: the policy sets ``allow_standing_allowances`` (the key may call contracts the account
  approved earlier; what they let others pull later is not capped);
- ``uncapped_assets``: the policy sets ``allow_uncapped_assets`` (the key may move assets no cap limits; the
  audit sees only what the caps measure);
- ``budget_nearly_used``: a cumulative cap (native, token, gas) or the use limit is at least
  ``budget_nearly_used`` (0.8) used -- on the use that got it there, and on the session while it holds.
- ``expiry_soon``: the window ends within ``min(expiry_soon_s, expiry_soon_fraction x the key's lifetime)``
  (24 h, 20 %) of a use, or of ``now`` for a live session: a one-hour key is flagged in its last 12 minutes.
- ``burst``: a use came at ``burst_factor`` (5x) the key's own median rate or faster (the gap since its
  previous use is at most a fifth of its median gap), once the key has ``burst_min_uses`` earlier uses.
- ``edge_of_policy``: one use took at least ``edge_fraction`` (90 %) of the per-call native cap, of what
  was left of a cumulative cap, or of a periodic cap.

JSON (:meth:`AuditReport.to_dict`): amounts in wei or token base units are **decimal strings** (they pass
2**53); counts, block numbers, timestamps and epochs are JSON integers; bytes are 0x-hex strings; times are
unix seconds, plus ISO-8601 UTC text in ``*_iso`` fields.
"""

from __future__ import annotations

import csv
import json
import statistics
import threading
import time as _time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal, localcontext
from typing import IO, Any, cast

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address

from smartkeys import artifacts
from smartkeys.delegation import require_smartkeys
from smartkeys.journal import Refusal, RefusalJournal
from smartkeys.logs import account_start_block, read_logs
from smartkeys.policy import _COMMON_SIGNATURES, SESSION_GRANTED_TOPIC
from smartkeys.policy_codec import PermissionMode, SessionPolicy, selector_of
from smartkeys.timefmt import period_text, utc_text

__all__ = [
    "AssetAudit",
    "AuditEntry",
    "AuditFlag",
    "AuditReport",
    "AuditThresholds",
    "CallInfo",
    "Revocation",
    "SessionAudit",
    "build_audit",
    "format_asset",
    "token_meta",
    "watch",
]

_ACCOUNT_ABI = artifacts.load("SmartKeysAccount")["abi"]
_EVENT_NAMES = {e["name"] for e in _ACCOUNT_ABI if e.get("type") == "event"}


_T_GRANTED = SESSION_GRANTED_TOPIC
_T_USED = keccak(text="SessionUsed(bytes32,uint256,uint8,bytes)")
_T_REVOKED = keccak(text="SessionRevoked(bytes32)")
_T_ALL_REVOKED = keccak(text="AllSessionsRevoked(uint32)")
_T_ROTATED = keccak(text="SessionRotated(bytes32,bytes32,address,address)")
_T_RENEWED = keccak(text="SessionRenewed(bytes32,bytes32,uint48,uint48)")

#: Selectors the audit names (others show as their 0x-hex selector).
FUNCTION_NAMES: dict[bytes, str] = {selector_of(s): s.split("(")[0] for s in _COMMON_SIGNATURES}
FUNCTION_NAMES.update({
    selector_of("safeTransferFrom(address,address,uint256)"): "safeTransferFrom",
    selector_of("setApprovalForAll(address,bool)"): "setApprovalForAll",
})
_ZERO4 = b"\x00\x00\x00\x00"

NATIVE = "native"
GAS = "gas"
USES = "uses"

_ERC20_META_ABI = [
    {"type": "function", "name": "symbol", "inputs": [], "outputs": [{"type": "string", "name": ""}],
     "stateMutability": "view"},
    {"type": "function", "name": "decimals", "inputs": [], "outputs": [{"type": "uint8", "name": ""}],
     "stateMutability": "view"},
]


# --------------------------------------------------------------------------------------------
# public types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditThresholds:
    """When the audit raises a flag (see the module docstring)."""

    budget_nearly_used: float = 0.8
    """Fraction of a cumulative cap (or of ``max_uses``) used."""
    expiry_soon_s: int = 86_400
    """Seconds before the end of the window, at most (see ``expiry_soon_fraction``)."""
    expiry_soon_fraction: float = 0.2
    """...and at most this fraction of the key's lifetime (grant or start to end), so a key granted for an hour
    is not flagged from its first second: the window is ``min(expiry_soon_s, fraction x lifetime)``."""
    burst_factor: float = 5.0
    """A use at this many times the key's median rate (or faster) is a burst."""
    burst_min_uses: int = 5
    """Earlier uses a key needs before a burst can be flagged (its median means something)."""
    edge_fraction: float = 0.9
    """Fraction of the per-call cap, of the remaining cumulative budget, or of a periodic cap, in one use."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "budget_nearly_used": self.budget_nearly_used, "expiry_soon_s": self.expiry_soon_s,
            "expiry_soon_fraction": self.expiry_soon_fraction,
            "burst_factor": self.burst_factor, "burst_min_uses": self.burst_min_uses,
            "edge_fraction": self.edge_fraction,
        }


@dataclass(frozen=True)
class AuditFlag:
    """Something the owner should look at.

    ``code`` is ``survived_redelegation``, ``uncapped_assets``, ``standing_allowances``, ``budget_nearly_used``, ``expiry_soon``, ``burst`` or ``edge_of_policy``; ``asset`` the
    asset concerned (``"native"``, ``"gas"``, ``"uses"``, a token address) or None; ``block_number`` /
    ``tx_hash`` the use it concerns (None for a flag on the session's present state).
    """

    code: str
    message: str
    session_id: bytes
    asset: str | None = None
    block_number: int | None = None
    tx_hash: bytes | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code, "message": self.message, "session_id": _hex(self.session_id), "asset": self.asset,
            "block_number": self.block_number, "tx_hash": _hex(self.tx_hash),
        }


@dataclass(frozen=True)
class CallInfo:
    """One call of a use: ``selector`` is 4 zero bytes for empty (or 1-3 byte) calldata."""

    target: str
    selector: bytes
    function: str | None = None

    @property
    def label(self) -> str:
        """The function's name, ``"(native transfer)"`` for empty calldata, else the 0x-hex selector."""
        if self.function:
            return self.function
        return "(native transfer)" if self.selector == _ZERO4 else "0x" + self.selector.hex()

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "selector": _hex(self.selector), "function": self.label}


@dataclass(frozen=True)
class AuditEntry:
    """One event of the account's history (chain order), or a refusal from the journal.

    ``kind``: ``grant``, ``use``, ``refusal``, ``revoke`` (one
    session), ``revoke_all`` (every session granted before ``epoch``; ``revoked_sessions`` lists them), or
    ``rotate`` / ``renew`` (``session_id`` is the successor, ``revoked_sessions`` the one it replaced).
    ``charges`` is what the event charged per asset; ``spent_after`` / ``remaining_after`` the session's
    cumulative counters after it, ``period_spent_after`` the current period's spend of periodic assets.
    A refusal's ``block_number`` is the latest block the SDK saw and its ``time`` the block time it checked.
    """

    kind: str
    time: int
    block_number: int | None
    tx_hash: bytes | None
    log_index: int | None
    session_id: bytes | None = None
    key: str | None = None
    calls: tuple[CallInfo, ...] = ()
    charges: Mapping[str, int] = field(default_factory=dict)
    spent_after: Mapping[str, int] = field(default_factory=dict)
    remaining_after: Mapping[str, int] = field(default_factory=dict)
    period_spent_after: Mapping[str, int] = field(default_factory=dict)
    uses_after: int | None = None
    flags: tuple[AuditFlag, ...] = ()
    epoch: int | None = None
    revoked_sessions: tuple[bytes, ...] = ()
    refusal: Refusal | None = None
    explanation: str | None = None
    """A refusal in the policy's units (:func:`smartkeys.refusals.explain`), when the error is one it knows."""

    @property
    def note(self) -> str:
        """A one-line human note (the refusal's reason, the epoch of a revoke-all)."""
        if self.kind == "refusal" and self.refusal is not None:
            if self.explanation:
                return f"{self.explanation} ({self.refusal.error}, via {self.refusal.path})"
            fields = ", ".join(f"{k}={v}" for k, v in self.refusal.fields.items())
            return f"{self.refusal.error}({fields}) via {self.refusal.path}"
        if self.kind == "revoke_all":
            return f"epoch -> {self.epoch}; {len(self.revoked_sessions)} session(s) revoked"
        if self.kind == "grant":
            return f"epoch {self.epoch}"
        if self.kind in ("rotate", "renew") and self.revoked_sessions:
            return f"replaces 0x{self.revoked_sessions[0].hex()}; its counters carried over"
        return ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "time": self.time, "time_iso": _iso(self.time), "block_number": self.block_number,
            "tx_hash": _hex(self.tx_hash), "log_index": self.log_index, "session_id": _hex(self.session_id),
            "key": self.key, "calls": [c.to_dict() for c in self.calls],
            "charges": _amounts(self.charges), "spent_after": _amounts(self.spent_after),
            "remaining_after": _amounts(self.remaining_after),
            "period_spent_after": _amounts(self.period_spent_after), "uses_after": self.uses_after,
            "flags": [f.to_dict() for f in self.flags], "epoch": self.epoch,
            "revoked_sessions": [_hex(s) for s in self.revoked_sessions],
            "refusal": self.refusal.to_json() if self.refusal is not None else None, "note": self.note,
            "explanation": self.explanation,
        }


@dataclass
class AssetAudit:
    """One budget of a session: ``asset`` is ``"native"``, ``"gas"`` or a token address.

    ``spent`` / ``remaining`` are cumulative against ``cap``. For periodic caps (``period`` seconds,
    ``period_cap`` each), ``periods`` maps each period index (``timestamp // period``) to what was spent in
    it, ``period_spent`` / ``period_remaining`` are for the period containing the report's ``now``, and
    ``ledger_period_index`` is the period the contract's ledger word is in (its last charge, or the grant).
    """

    asset: str
    cap: int
    spent: int = 0
    period: int = 0
    period_cap: int = 0
    periods: dict[int, int] = field(default_factory=dict)
    period_spent: int = 0
    ledger_period_index: int = 0
    history: list[tuple[int, int]] = field(default_factory=list)
    """(time, cumulative spent) after the grant and after each charge (for plots)."""

    @property
    def remaining(self) -> int:
        return max(self.cap - self.spent, 0)

    @property
    def period_remaining(self) -> int:
        return max(self.period_cap - self.period_spent, 0) if self.period else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "asset": self.asset, "cap": str(self.cap), "spent": str(self.spent), "remaining": str(self.remaining),
            "period": self.period, "period_cap": str(self.period_cap), "period_spent": str(self.period_spent),
            "period_remaining": str(self.period_remaining),
            "period_rule": period_text(self.period) if self.period else None,  # calendar windows, exact reset
            "periods": {str(k): str(v) for k, v in sorted(self.periods.items())},
            "ledger_period_index": self.ledger_period_index,
        }


@dataclass(frozen=True)
class Revocation:
    """How a session was revoked: ``kind`` is ``"single"`` (``revokeSession``), ``"epoch"``
    (``revokeAllSessions``, moving the epoch to ``epoch``), or ``"rotated"`` / ``"renewed"`` (replaced by a
    successor session, :attr:`SessionAudit.replaced_by`)."""

    kind: str
    time: int
    block_number: int
    tx_hash: bytes
    epoch: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "time": self.time, "time_iso": _iso(self.time), "block_number": self.block_number,
                "tx_hash": _hex(self.tx_hash), "epoch": self.epoch}


@dataclass
class SessionAudit:
    """Everything about one session (one policy, ``session_id = keccak256(policy)``).

    ``granted_*`` describe the grant (a session id is granted once: the contract refuses a re-grant, so
    ``grants`` is 1 for every session it accepted). ``status`` at the report's ``now``: ``active``, ``expired``, ``revoked`` or
    ``not-yet-valid``. ``uses`` counts every use since the latest grant; ``uses_remaining`` is None when
    unlimited.
    """

    session_id: bytes
    key: str
    policy: SessionPolicy
    policy_text: str
    granted_block: int
    granted_time: int
    granted_tx: bytes
    granted_epoch: int
    grants: int = 1
    uses: int = 0
    assets: list[AssetAudit] = field(default_factory=list)
    entries: list[AuditEntry] = field(default_factory=list)
    refusals: list[AuditEntry] = field(default_factory=list)
    revocation: Revocation | None = None
    status: str = "active"
    flags: list[AuditFlag] = field(default_factory=list)
    replaces: bytes | None = None
    """The session this one succeeded (rotation or renewal): its counters started from that one's."""
    replaced_by: bytes | None = None
    """The session that succeeded this one (it was revoked in the same transaction)."""

    @property
    def max_uses(self) -> int:
        return self.policy.max_uses

    @property
    def uses_remaining(self) -> int | None:
        return max(self.policy.max_uses - self.uses, 0) if self.policy.max_uses else None

    @property
    def use_entries(self) -> list[AuditEntry]:
        return [e for e in self.entries if e.kind == "use"]

    def asset(self, name: str) -> AssetAudit:
        """The :class:`AssetAudit` of ``"native"``, ``"gas"`` or a token address."""
        if name not in (NATIVE, GAS):
            name = to_checksum_address(name)
        for a in self.assets:
            if a.asset == name:
                return a
        raise KeyError(f"session 0x{self.session_id.hex()} has no budget {name!r}; "
                       f"budgets: {', '.join(a.asset for a in self.assets)}")

    def flag_codes(self) -> set[str]:
        return {f.code for f in self.flags}

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_id": _hex(self.session_id), "key": self.key, "status": self.status,
            "policy": _policy_dict(self.policy), "policy_text": self.policy_text,
            "granted": {"block_number": self.granted_block, "time": self.granted_time,
                        "time_iso": _iso(self.granted_time), "tx_hash": _hex(self.granted_tx),
                        "epoch": self.granted_epoch, "grants": self.grants},
            "revoked": self.revocation.to_dict() if self.revocation else None,
            "replaces": _hex(self.replaces), "replaced_by": _hex(self.replaced_by),
            "uses": self.uses, "max_uses": self.policy.max_uses, "uses_remaining": self.uses_remaining,
            "assets": [a.to_dict() for a in self.assets],
            "refusals": [e.refusal.to_json() for e in self.refusals if e.refusal is not None],
            "flags": [f.to_dict() for f in self.flags],
        }


CSV_COLUMNS = ("time", "block", "tx", "log_index", "session_id", "key", "kind", "target", "function", "asset",
               "amount", "spent_after", "remaining_after", "flags", "note")


@dataclass
class AuditReport:
    """The audit of one account (see :func:`build_audit`)."""

    account: str
    chain_id: int
    from_block: int
    to_block: int
    now: int
    epoch: int
    thresholds: AuditThresholds
    sessions: list[SessionAudit]
    entries: list[AuditEntry]
    tokens: dict[str, tuple[str, int]] = field(default_factory=dict)
    """token address -> (symbol, decimals), where the token answered."""
    names: dict[str, str] = field(default_factory=dict)
    """address -> name (a policy file's address book, contracts, tokens) for argument rules' addresses."""

    def session(self, session_id: bytes | str) -> SessionAudit:
        """The session with this id (bytes or 0x-hex)."""
        if isinstance(session_id, str):
            session_id = bytes.fromhex(session_id.removeprefix("0x"))
        for s in self.sessions:
            if s.session_id == session_id:
                return s
        raise KeyError(f"no session 0x{session_id.hex()} in this audit")

    def sessions_of(self, key: str) -> list[SessionAudit]:
        key = to_checksum_address(key)
        return [s for s in self.sessions if s.key == key]

    @property
    def flags(self) -> list[AuditFlag]:
        return [f for s in self.sessions for f in s.flags]

    @property
    def refusals(self) -> list[AuditEntry]:
        return [e for e in self.entries if e.kind == "refusal"]

    def format_amount(self, asset: str, amount: int) -> str:
        """``amount`` of ``asset`` in human units where known."""
        return _format(asset, amount, self.tokens)

    # -- export ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (amounts as decimal strings, see the module docstring)."""
        return {
            "account": self.account, "chain_id": self.chain_id, "from_block": self.from_block,
            "to_block": self.to_block, "now": self.now, "now_iso": _iso(self.now), "epoch": self.epoch,
            "thresholds": self.thresholds.to_dict(),
            "tokens": {a: {"symbol": s, "decimals": d} for a, (s, d) in self.tokens.items()},
            "sessions": [self._with_texts(s) for s in self.sessions],
            "entries": [e.to_dict() for e in self.entries],
        }

    def _with_texts(self, s: SessionAudit) -> dict[str, Any]:
        """A session's JSON plus the human twins of its amounts (``*_text``) and its time left, so the JSON
        carries what the text report shows (the same shape as ``status --json``; README "JSON output")."""
        from smartkeys.refusals import duration_text

        doc = s.to_dict()
        for a in doc.get("assets", []):
            for name in ("cap", "spent", "remaining", "period_cap", "period_spent", "period_remaining"):
                if isinstance(a.get(name), str):
                    a[f"{name}_text"] = self.format_amount(a["asset"], int(a[name]))
        from smartkeys.policy_view import rate_view, rules_view

        doc["argument_rules"] = rules_view(s.policy, names=self.names, tokens=self.tokens)
        doc["rate_limits"] = rate_view(s.policy, self.rate_ledger(s), self.now + 1)
        ended = s.status in ("revoked", "expired")  # nothing is left of a dead session (as in `status`)
        left = 0 if ended else max(s.policy.valid_until - self.now, 0)
        doc["uses_left"] = 0 if s.status == "revoked" else s.uses_remaining
        doc["valid_after"], doc["valid_until"] = s.policy.valid_after, s.policy.valid_until
        doc["valid_after_iso"], doc["valid_until_iso"] = _iso(s.policy.valid_after), _iso(s.policy.valid_until)
        for refusal in doc.get("refusals", []):  # integer unix seconds, as every other time in the JSON
            if isinstance(refusal.get("time"), float):
                refusal["time"] = int(refusal["time"])
        doc["seconds_left"] = left
        doc["time_left_text"] = duration_text(left)
        return doc

    def rate_ledger(self, s: SessionAudit) -> Any:
        """The session's rate ledger as its ``SessionUsed`` events (and those of the sessions it succeeded, whose
        rate state the contract carried over) rebuild it (last use, uses in the period of ``now + 1``, the next
        block): what ``RateLimits.sol`` keeps, for :func:`smartkeys.policy_view.rate_view`."""
        from smartkeys.preflight import Ledger

        times = [e.time for e in s.use_entries]
        # a rotated or renewed session starts from its predecessors' rate state (the contract copies it)
        seen, previous = {s.session_id}, s.replaces
        by_id = {x.session_id: x for x in self.sessions}
        while previous is not None and previous in by_id and previous not in seen:
            seen.add(previous)
            times += [e.time for e in by_id[previous].use_entries]
            previous = by_id[previous].replaces
        period = s.policy.use_period
        index = (self.now + 1) // period if period else 0
        in_period = sum(1 for t in times if t // period == index) if period else 0
        return Ledger(max(times, default=0), in_period, index)

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    def csv_rows(self) -> list[dict[str, str]]:
        """The rows :meth:`write_csv` writes (columns :data:`CSV_COLUMNS`).

        One row per event; a use that charges several assets gives one row per asset (same tx and log
        index), a use that charges none one row with an empty asset. The calls of a batch are joined with
        ``;`` in ``target`` and ``function``. ``flags`` lists the codes (``;``-joined) that concern the
        row's asset, plus those about the use as a whole. ``spent_after`` / ``remaining_after`` are
        cumulative, in base units.
        """
        rows: list[dict[str, str]] = []
        for e in self.entries:
            base = {
                "time": _iso(e.time), "block": "" if e.block_number is None else str(e.block_number),
                "tx": _hex(e.tx_hash) or "", "log_index": "" if e.log_index is None else str(e.log_index),
                "session_id": _hex(e.session_id) or "", "key": e.key or "", "kind": e.kind,
                "target": ";".join(c.target for c in e.calls), "function": ";".join(c.label for c in e.calls),
                "asset": "", "amount": "", "spent_after": "", "remaining_after": "", "flags": "", "note": e.note,
            }
            if e.kind == "grant":
                base["function"] = "grantSession"
            elif e.kind == "revoke":
                base["function"] = "revokeSession"
            elif e.kind == "revoke_all":
                base["function"] = "revokeAllSessions"
            elif e.kind in ("rotate", "renew"):
                base["function"] = "rotateSessionSigner" if e.kind == "rotate" else "renewSessionPolicy"
            if not e.charges:
                base["flags"] = ";".join(f.code for f in e.flags)
                rows.append(base)
                continue
            for asset, amount in e.charges.items():
                row = dict(base)
                row.update(asset=asset, amount=str(amount), spent_after=str(e.spent_after.get(asset, "")),
                           remaining_after=str(e.remaining_after.get(asset, "")))
                row["flags"] = ";".join(f.code for f in e.flags if f.asset in (asset, None, USES))
                rows.append(row)
        return rows

    def write_csv(self, fp: IO[str]) -> None:
        """Write the timeline as CSV to the text file ``fp`` (open it with ``newline=""``); see :meth:`csv_rows`."""
        writer = csv.DictWriter(fp, fieldnames=list(CSV_COLUMNS))
        writer.writeheader()
        writer.writerows(self.csv_rows())

    def figure(self, *, width: float = 12.0) -> Any:
        """The audit picture as a matplotlib ``Figure``: one panel per asset (native value, each token, gas) in
        human units with each session's cumulative spend, its caps (identical caps drawn once, naming the
        sessions), periodic caps and resets, refusals, revocations and expiries, plus a sessions panel; see
        :mod:`smartkeys._audit_plot` for the layout and the artist ids. ``width`` in inches. Needs matplotlib
        (a dependency of smartkeys), used without pyplot. Without it:
        :class:`~smartkeys.errors.InvalidInputError` (exit 2 in the CLI) naming the fix.
        """
        try:
            from smartkeys._audit_plot import audit_figure

            return audit_figure(self, width=width)
        except ImportError as err:
            if "matplotlib" not in str(err):
                raise
            from smartkeys.errors import InvalidInputError

            raise InvalidInputError(
                "plot", f"no matplotlib ({err})", "matplotlib installed (a dependency of smartkeys)",
                "pip install 'matplotlib>=3.7,<4' (or reinstall smartkeys: pip install -e .)",
            ) from None

    def plot(self, path: str, *, width: float = 12.0, dpi: int = 100) -> str:
        """Write :meth:`figure` to ``path`` as a PNG (``dpi`` dots per inch). Returns ``path``.

        Raises :class:`~smartkeys.errors.InvalidInputError` without matplotlib (see :meth:`figure`).
        """
        fig = self.figure(width=width)
        fig.savefig(path, format="png", dpi=dpi)
        return path


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _hex(value: bytes | None) -> str | None:
    return None if value is None else "0x" + bytes(value).hex()


def _iso(t: int | None) -> str:
    if t is None:
        return ""
    return utc_text(int(t))  # any uint48 time, years past 9999 included


def _amounts(values: Mapping[str, int]) -> dict[str, str]:
    return {k: str(v) for k, v in values.items()}


HUMAN_PLACES = 6
"""Fraction digits :func:`format_asset` shows (more when needed to keep 3 significant digits)."""


def _human_number(value: int, decimals: int) -> str:
    """``value / 10**decimals`` as plain decimal text, cut (never rounded up) to :data:`HUMAN_PLACES`
    fraction digits, or to 3 significant digits if that needs more.

    >>> _human_number(323_423_835_557_320, 18), _human_number(10**16, 18), _human_number(21_000, 18)
    ('0.000323', '0.01', '0.000000000000021')
    """
    with localcontext() as ctx:
        ctx.prec = 400
        exact = Decimal(value).scaleb(-decimals)
        places = max(HUMAN_PLACES, 2 - exact.adjusted()) if exact else 0
        if -cast(int, exact.as_tuple().exponent) > places:  # finite (from an int): never 'n', 'N' or 'F'
            exact = exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN)
        text = format(exact, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def format_asset(asset: str, amount: int, tokens: Mapping[str, tuple[str, int]] | None = None) -> str:
    """Human text of ``amount`` base units of ``asset`` (``"native"``, ``"gas"`` or a token address): ETH for
    native value and gas, a token's symbol and decimals from ``tokens`` (address -> (symbol, decimals)), or
    base units when the token did not say. Human output only: JSON keeps exact base-unit strings.

    >>> format_asset("gas", 323_423_835_557_320), format_asset("0xA0b8", 3_000_000, {"0xA0b8": ("USDC", 6)})
    ('0.000323 ETH', '3 USDC')
    """
    if asset in (NATIVE, GAS):
        return f"{_human_number(amount, 18)} ETH"
    if asset == USES:
        return f"{amount} uses"
    if tokens and asset in tokens:
        symbol, decimals = tokens[asset]
        return f"{_human_number(amount, decimals)} {symbol}"
    return f"{amount} units of {asset}"


_format = format_asset


def _policy_dict(p: SessionPolicy) -> dict[str, Any]:
    return {
        "key": p.key, "valid_after": p.valid_after, "valid_until": p.valid_until, "max_uses": p.max_uses,
        "native_per_call": str(p.native_per_call), "native_total": str(p.native_total),
        "native_period": p.native_period, "native_per_period": str(p.native_per_period),
        "gas_budget": str(p.gas_budget), "salt": p.salt, "allow_uncapped_assets": p.allow_uncapped_assets,
        "allow_standing_allowances": p.allow_standing_allowances,
        "permissions": [
            {"target": x.target, "selector": _hex(cast(bytes, x.selector)), "mode": x.mode.name.lower(),
             "function": FUNCTION_NAMES.get(cast(bytes, x.selector)) if x.mode is PermissionMode.EXACT else None}
            for x in p.permissions
        ],
        "token_caps": [{"token": c.token, "cap": str(c.cap), "period": c.period, "per_period": str(c.per_period)}
                       for c in p.token_caps],
        "paymasters": list(p.paymasters),
    }


def _policy_text(policy: SessionPolicy, tokens: Mapping[str, tuple[str, int]],
                 names: Mapping[str, str] | None = None) -> str:
    from smartkeys.policy import decompile

    address_names = names
    token_names: dict[str, tuple[str, int]] = {}
    for c in policy.token_caps:
        if c.token in tokens:
            symbol, decimals = tokens[c.token]
            name = symbol if symbol.isidentifier() and symbol not in token_names else f"token_{c.token[2:10].lower()}"
            token_names[name] = (c.token, decimals)
    try:
        book = {n: a for a, n in (address_names or {}).items() if n not in token_names}
        return decompile(policy, tokens=token_names, address_book=book).describe(now=policy.valid_after)
    except Exception:  # noqa: BLE001 - a policy the friendly model cannot express: fall back to the fields
        return json.dumps(_policy_dict(policy))


def _span(seconds: int) -> str:
    from smartkeys.refusals import duration_text

    return duration_text(seconds)


def token_meta(w3: Any, token: str) -> tuple[str, int] | None:
    """The ERC-20 ``(symbol, decimals)`` of ``token``, or None if it does not answer both."""
    try:
        c = w3.eth.contract(address=token, abi=_ERC20_META_ABI)
        return str(c.functions.symbol().call()), int(c.functions.decimals().call())
    except Exception:  # noqa: BLE001 - not every token answers symbol()/decimals()
        return None


@dataclass(frozen=True)
class _Log:
    block_number: int
    log_index: int
    tx_hash: bytes
    topics: tuple[bytes, ...]
    data: bytes

    @property
    def order(self) -> tuple[float, int, float]:
        return (self.block_number, 0, self.log_index)


def _refusal_order(r: Refusal) -> tuple[float, int, float]:
    return (float("inf") if r.block_number is None else r.block_number, 1, r.time)


def _resolve_block(w3: Any, block: int | str) -> int:
    if isinstance(block, int):
        return block
    return int(w3.eth.get_block(block)["number"])


def _fetch_logs(w3: Any, account: str, start: int, end: int, chunk_size: int | None,
                progress: Callable[[int, int], None] | None) -> list[_Log]:
    """The account's logs in ``[start, end]`` through :func:`smartkeys.logs.read_logs` (at most ``chunk_size``
    blocks per ``eth_getLogs``, fewer if the provider says so)."""
    out: list[_Log] = []
    if start > end:
        if progress is not None:
            progress(0, 0)
        return out
    for log in read_logs(w3, account, start, end, chunk=chunk_size, progress=progress):
        topics = tuple(bytes(t) for t in log["topics"])
        if not topics:
            continue
        out.append(_Log(int(log["blockNumber"]), int(log["logIndex"]), bytes(log["transactionHash"]),
                        topics, bytes(log["data"])))
    out.sort(key=lambda x: x.order)
    return out


# --------------------------------------------------------------------------------------------
# the auditor: replays events in order
# --------------------------------------------------------------------------------------------


class _Auditor:
    def __init__(self, w3: Any, account: str, thresholds: AuditThresholds,
                 names: Mapping[str, str] | None = None) -> None:
        self.w3 = w3
        self.names: dict[str, str] = {to_checksum_address(a): str(n) for a, n in (names or {}).items()}
        self.account = account
        self.t = thresholds
        self.sessions: dict[bytes, SessionAudit] = {}
        self.entries: list[AuditEntry] = []
        self.epoch = 0
        self.tokens: dict[str, tuple[str, int]] = {}
        self._token_checked: set[str] = set()
        self._block_times: dict[int, int] = {}
        self._key_use_times: dict[str, list[int]] = {}

    # -- inputs -----------------------------------------------------------------------------

    def block_time(self, number: int) -> int:
        t = self._block_times.get(number)
        if t is None:
            t = self._block_times[number] = int(self.w3.eth.get_block(number)["timestamp"])
        return t

    def apply_log(self, log: _Log) -> AuditEntry | None:
        topic = log.topics[0]
        when = self.block_time(log.block_number)
        entry: AuditEntry | None
        if topic == _T_GRANTED:
            entry = self._grant(log, when)
        elif topic == _T_USED:
            entry = self._use(log, when)
        elif topic == _T_REVOKED:
            entry = self._revoke(log, when)
        elif topic == _T_ALL_REVOKED:
            entry = self._revoke_all(log, when)
        elif topic in (_T_ROTATED, _T_RENEWED):
            entry = self._succession(log, when, "rotate" if topic == _T_ROTATED else "renew")
        else:
            return None
        if entry is not None:
            self.entries.append(entry)
        return entry

    def apply_refusal(self, r: Refusal) -> AuditEntry:
        s = self.sessions.get(r.session_id)
        calls = tuple(CallInfo(c.target, c.selector if c.selector else _ZERO4, FUNCTION_NAMES.get(c.selector))
                      for c in r.calls)
        when = r.block_time if r.block_time is not None else int(r.time)
        entry = AuditEntry("refusal", when, r.block_number, None, None, r.session_id, r.key, calls, refusal=r,
                           explanation=self._explain(r, s, when))
        if s is not None:
            s.refusals.append(entry)
            s.entries.append(entry)
        self.entries.append(entry)
        return entry

    def _explain(self, r: Refusal, s: Any, when: int) -> str | None:
        """The refusal in the policy's units, rebuilt from the journal's error name and fields."""
        from smartkeys.refusals import Units, explain, refusal_from_fields

        token = r.fields.get("token") or r.fields.get("target")
        if isinstance(token, str):
            try:
                self._meta(token)
            except Exception:  # noqa: BLE001 - a name is a nicety
                pass
        try:
            return explain(refusal_from_fields(r.error, r.fields),
                           Units(tokens=dict(self.tokens), policy=getattr(s, "policy", None), names=self.names),
                           now=when)
        except (KeyError, TypeError, ValueError):  # a journal line with odd fields: keep the raw note
            return None

    # -- events -----------------------------------------------------------------------------

    def _meta(self, token: str) -> None:
        if token not in self._token_checked:
            self._token_checked.add(token)
            meta = token_meta(self.w3, token)
            if meta is not None:
                self.tokens[token] = meta

    def _grant(self, log: _Log, when: int) -> AuditEntry:
        sid = log.topics[1]
        epoch, packed = abi_decode(["uint32", "bytes"], log.data)
        policy = SessionPolicy.decode(bytes(packed))
        for c in policy.token_caps:
            self._meta(c.token)
        assets = [AssetAudit(NATIVE, policy.native_total, period=policy.native_period,
                             period_cap=policy.native_per_period)]
        assets.append(AssetAudit(GAS, policy.gas_budget))
        assets += [AssetAudit(c.token, c.cap, period=c.period, period_cap=c.per_period) for c in policy.token_caps]
        for a in assets:
            a.ledger_period_index = when // a.period if a.period else 0
            a.history.append((when, 0))
        old = self.sessions.get(sid)
        s = SessionAudit(sid, policy.key, policy, _policy_text(policy, self.tokens, self.names), log.block_number, when,
                         log.tx_hash, int(epoch), grants=(old.grants + 1) if old else 1, assets=assets)
        if old is not None:  # a re-grant: fresh budgets, history kept
            s.entries, s.refusals = old.entries, old.refusals
        self.sessions[sid] = s
        entry = AuditEntry("grant", when, log.block_number, log.tx_hash, log.log_index, sid, policy.key,
                           epoch=int(epoch), spent_after=self._spent(s), remaining_after=self._remaining(s),
                           uses_after=0)
        s.entries.append(entry)
        return entry

    @staticmethod
    def _spent(s: SessionAudit) -> dict[str, int]:
        return {a.asset: a.spent for a in s.assets}

    @staticmethod
    def _remaining(s: SessionAudit) -> dict[str, int]:
        return {a.asset: a.remaining for a in s.assets}

    def _charge(self, s: SessionAudit, asset: str, amount: int, when: int) -> AssetAudit | None:
        for a in s.assets:
            if a.asset == asset:
                a.spent += amount
                if a.period:
                    index = when // a.period
                    a.periods[index] = a.periods.get(index, 0) + amount
                    a.ledger_period_index = index
                a.history.append((when, a.spent))
                return a
        return None

    def _use(self, log: _Log, when: int) -> AuditEntry | None:
        sid = log.topics[1]
        value, count, usage = abi_decode(["uint256", "uint8", "bytes"], log.data)
        usage = bytes(usage)
        calls = []
        for i in range(count):
            chunk = usage[24 * i: 24 * i + 24]
            target, selector = to_checksum_address(chunk[:20]), chunk[20:24]
            calls.append(CallInfo(target, selector, FUNCTION_NAMES.get(selector)))
        charges: dict[str, int] = {}
        if value:
            charges[NATIVE] = int(value)
        pos = 24 * count
        while pos + 34 <= len(usage):
            token = to_checksum_address(usage[pos: pos + 20])
            charges[token] = charges.get(token, 0) + int.from_bytes(usage[pos + 20: pos + 34], "big")
            pos += 34
        s = self.sessions.get(sid)
        if s is None:  # a use of a session granted before the scanned range
            entry = AuditEntry("use", when, log.block_number, log.tx_hash, log.log_index, sid, None, tuple(calls),
                               charges)
            return entry
        remaining_before = self._remaining(s)
        flags: list[AuditFlag] = []
        for asset, amount in charges.items():
            self._charge(s, asset, amount, when)
        s.uses += 1
        ref: dict[str, Any] = dict(session_id=sid, block_number=log.block_number, tx_hash=log.tx_hash)
        flags += self._edge_flags(s, charges, remaining_before, count, when, ref)
        flags += self._nearly_used_flags(s, charges, ref)
        flags += self._burst_flags(s, when, ref)
        if 0 <= s.policy.valid_until - when <= self._expiry_window(s):
            flags.append(AuditFlag("expiry_soon",
                                   f"used {_span(s.policy.valid_until - when)} before the key expires", **ref))
        s.flags += [f for f in flags if f.code in ("burst", "edge_of_policy")]
        period_after = {a.asset: a.periods.get(when // a.period, 0) for a in s.assets if a.period}
        entry = AuditEntry("use", when, log.block_number, log.tx_hash, log.log_index, sid, s.key, tuple(calls),
                           charges, self._spent(s), self._remaining(s), period_after, s.uses, tuple(flags))
        s.entries.append(entry)
        return entry

    def _revoke(self, log: _Log, when: int) -> AuditEntry:
        sid = log.topics[1]
        s = self.sessions.get(sid)
        entry = AuditEntry("revoke", when, log.block_number, log.tx_hash, log.log_index, sid,
                           s.key if s else None)
        if s is not None:
            s.revocation = Revocation("single", when, log.block_number, log.tx_hash)
            s.entries.append(entry)
        return entry

    def _succession(self, log: _Log, when: int, kind: str) -> AuditEntry:
        """``SessionRotated`` / ``SessionRenewed``: the successor (granted just before, in the same transaction)
        carries on the predecessor's counters; the predecessor is revoked."""
        prev_id, next_id = log.topics[1], log.topics[2]
        prev, nxt = self.sessions.get(prev_id), self.sessions.get(next_id)
        if prev is not None:
            prev.revocation = Revocation("rotated" if kind == "rotate" else "renewed", when, log.block_number,
                                         log.tx_hash)
            prev.replaced_by = next_id
        if nxt is not None:
            nxt.replaces = prev_id
            if prev is not None:
                nxt.uses = prev.uses
                for a in nxt.assets:
                    try:
                        old = prev.asset(a.asset)
                    except KeyError:
                        continue
                    a.spent, a.periods, a.ledger_period_index = old.spent, dict(old.periods), old.ledger_period_index
                    a.history.append((when, a.spent))
        entry = AuditEntry(kind, when, log.block_number, log.tx_hash, log.log_index, next_id,
                           nxt.key if nxt else None,
                           spent_after=self._spent(nxt) if nxt else {},
                           remaining_after=self._remaining(nxt) if nxt else {},
                           uses_after=nxt.uses if nxt else None, revoked_sessions=(prev_id,))
        for s in {id(x): x for x in (prev, nxt) if x is not None}.values():
            s.entries.append(entry)
        return entry

    def _revoke_all(self, log: _Log, when: int) -> AuditEntry:
        (new_epoch,) = abi_decode(["uint32"], log.data)
        self.epoch = int(new_epoch)
        revoked = []
        for s in self.sessions.values():
            if s.revocation is None and s.granted_epoch < self.epoch:
                s.revocation = Revocation("epoch", when, log.block_number, log.tx_hash, self.epoch)
                revoked.append(s.session_id)
        entry = AuditEntry("revoke_all", when, log.block_number, log.tx_hash, log.log_index, epoch=self.epoch,
                           revoked_sessions=tuple(revoked))
        for sid in revoked:
            self.sessions[sid].entries.append(entry)
        return entry

    # -- flags ------------------------------------------------------------------------------

    def _fmt(self, asset: str, amount: int) -> str:
        return _format(asset, amount, self.tokens)

    def _nearly_used_flags(self, s: SessionAudit, charged: Iterable[str], ref: dict) -> list[AuditFlag]:
        out = []
        for a in s.assets:
            if a.asset in charged and a.cap > 0 and a.spent >= self.t.budget_nearly_used * a.cap:
                out.append(AuditFlag(
                    "budget_nearly_used",
                    f"{a.spent * 100 // a.cap}% of the {self._asset_name(a.asset)} budget used "
                    f"({self._fmt(a.asset, a.spent)} of {self._fmt(a.asset, a.cap)}; "
                    f"{self._fmt(a.asset, a.remaining)} left)", asset=a.asset, **ref))
        if ref.get("block_number") is not None and s.policy.max_uses and GAS not in charged:
            if s.uses >= self.t.budget_nearly_used * s.policy.max_uses:
                out.append(AuditFlag("budget_nearly_used",
                                     f"{s.uses} of {s.policy.max_uses} uses made", asset=USES, **ref))
        return out

    def _asset_name(self, asset: str) -> str:
        if asset in (NATIVE, GAS):
            return asset
        return self.tokens.get(asset, (asset,))[0]

    def _edge_flags(self, s: SessionAudit, charges: Mapping[str, int], remaining_before: Mapping[str, int],
                    call_count: int, when: int, ref: dict) -> list[AuditFlag]:
        out = []
        edge = self.t.edge_fraction
        p = s.policy
        value = charges.get(NATIVE, 0)
        if value and call_count == 1 and p.native_per_call and value >= edge * p.native_per_call:
            out.append(AuditFlag(
                "edge_of_policy", f"one call sent {self._fmt(NATIVE, value)}: {value * 100 // p.native_per_call}% of "
                f"the per-call cap {self._fmt(NATIVE, p.native_per_call)}", asset=NATIVE, **ref))
        for a in s.assets:
            amount = charges.get(a.asset, 0)
            if not amount:
                continue
            before = remaining_before.get(a.asset, 0)
            if before and amount >= edge * before:
                out.append(AuditFlag(
                    "edge_of_policy", f"one use took {self._fmt(a.asset, amount)}: {amount * 100 // before}% of "
                    f"the {self._fmt(a.asset, before)} left of the {self._asset_name(a.asset)} budget",
                    asset=a.asset, **ref))
            elif a.period and a.period_cap and amount >= edge * a.period_cap:
                out.append(AuditFlag(
                    "edge_of_policy", f"one use took {self._fmt(a.asset, amount)}: {amount * 100 // a.period_cap}% "
                    f"of the periodic cap {self._fmt(a.asset, a.period_cap)} {period_text(a.period)}",
                    asset=a.asset, **ref))
        return out

    def _burst_flags(self, s: SessionAudit, when: int, ref: dict) -> list[AuditFlag]:
        times = self._key_use_times.setdefault(s.key, [])
        out = []
        if len(times) >= max(self.t.burst_min_uses, 2):
            gaps = [b - a for a, b in zip(times, times[1:], strict=False)]  # consecutive pairs
            median = statistics.median(gaps)
            gap = when - times[-1]
            if median > 0 and gap * self.t.burst_factor <= median:
                rate = "at once" if gap == 0 else f"{median / gap:.0f}x its usual rate"
                out.append(AuditFlag(
                    "burst", f"key {s.key} used again {gap} s after its previous use; its median gap is "
                    f"{median:g} s ({rate})", **ref))
        times.append(when)
        return out

    # -- result -----------------------------------------------------------------------------

    def _expiry_window(self, s: SessionAudit) -> float:
        """How close to its end a key's window must be to flag ``expiry_soon``: the absolute threshold, cut to a
        fraction of the key's lifetime (from its grant, or its start if later, to its end)."""
        lifetime = max(s.policy.valid_until - max(s.policy.valid_after, s.granted_time), 0)
        return min(self.t.expiry_soon_s, self.t.expiry_soon_fraction * lifetime)

    def read_gas_spent(self, block: int) -> None:
        """Set each session's ``gas`` spent from ``sessionStatus`` at ``block`` (gas has no event)."""
        contract = self.w3.eth.contract(address=self.account, abi=_ACCOUNT_ABI)
        for s in self.sessions.values():
            _live, _uses, _native, gas_spent, epoch = contract.functions.sessionStatus(s.session_id).call(
                block_identifier=block)
            if gas_spent and epoch == s.granted_epoch:
                asset = s.asset(GAS)
                asset.spent = int(gas_spent)
                asset.history.append((self.block_time(block), asset.spent))

    def report(self, chain_id: int, from_block: int, to_block: int, now: int) -> AuditReport:
        for s in self.sessions.values():
            p = s.policy
            if s.revocation is not None:
                s.status = "revoked"
            elif now > p.valid_until:
                s.status = "expired"
            elif now <= p.valid_after:
                s.status = "not-yet-valid"
            else:
                s.status = "active"
            for a in s.assets:
                a.period_spent = a.periods.get(now // a.period, 0) if a.period else 0
            historic = [f for f in s.flags if f.code in ("burst", "edge_of_policy")]
            present = self._nearly_used_flags(s, {a.asset for a in s.assets}, {"session_id": s.session_id})
            if p.max_uses and s.uses >= self.t.budget_nearly_used * p.max_uses:
                present.append(AuditFlag("budget_nearly_used", f"{s.uses} of {p.max_uses} uses made",
                                         s.session_id, asset=USES))
            if s.status in ("active", "not-yet-valid") and p.valid_until - now <= self._expiry_window(s):
                present.append(AuditFlag(
                    "expiry_soon", f"the key expires in {_span(p.valid_until - now)} (at {_iso(p.valid_until)})",
                    s.session_id))
            if s.status == "active":
                from smartkeys.account import delegation_change_since

                changed = delegation_change_since(self.w3, self.account, s.granted_block)
                if changed is not None:
                    present.insert(0, AuditFlag(
                        "survived_redelegation", f"granted at block {s.granted_block}, before the account's "
                        f"delegation changed (seen at block {changed}); a session survives re-delegation: revoke "
                        "it unless it was meant to be kept", s.session_id, block_number=changed))
            if p.allow_standing_allowances:
                present.insert(0, AuditFlag(
                    "standing_allowances", "granted with allow_standing_allowances: the key may call contracts "
                    "this account approved earlier, and what they let others pull later is not capped", s.session_id))
            if p.allow_uncapped_assets:
                present.insert(0, AuditFlag(
                    "uncapped_assets", "granted with allow_uncapped_assets: the key may move assets that no cap "
                    "limits, and only capped assets are measured here", s.session_id))
            s.flags = present + historic
        return AuditReport(self.account, chain_id, from_block, to_block, now, self.epoch, self.t,
                           list(self.sessions.values()), list(self.entries), dict(self.tokens), dict(self.names))


# --------------------------------------------------------------------------------------------
# entry points
# --------------------------------------------------------------------------------------------


def build_audit(
    w3: Any,
    account: str,
    *,
    from_block: int | None = None,
    to_block: int | str = "latest",
    journal: RefusalJournal | None = None,
    thresholds: AuditThresholds = AuditThresholds(),
    now: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    chunk_size: int | None = None,
    names: Mapping[str, str] | None = None,
) -> AuditReport:
    """Rebuild the audit of ``account`` from its logs in ``[from_block, to_block]`` (+ ``journal`` refusals).

    ``names`` (address -> name, e.g. :meth:`smartkeys.policy.PolicyModel.address_names`) names the addresses
    of argument rules (recipient lists) in the texts and the JSON (``argument_rules``; ``rate_limits`` gives
    each session's rate limits and when its next use is allowed).

    ``now`` (unix seconds) is when statuses and present-state flags are evaluated; default: the timestamp of
    ``to_block``. ``from_block`` defaults to the account's first transaction block
    (:func:`smartkeys.logs.account_start_block`: no log of the account is older). Logs are read with
    :func:`smartkeys.logs.read_logs`, at most ``chunk_size`` blocks per ``eth_getLogs`` (default: what the
    provider allows); ``progress(blocks_done, blocks_total)`` is called after each chunk. Refusals are those of this account and chain whose recorded block is in range
    (or unknown), placed after the events of the block the SDK saw.
    """
    account = to_checksum_address(account)
    end = _resolve_block(w3, to_block)
    if chunk_size is not None and chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    if from_block is None:
        from_block = min(account_start_block(w3, account, to_block=end), end + 1)
    chain_id = int(w3.eth.chain_id)
    # the gas spent is read from the account's code at ``end``: without smartkeys code there it would be an
    # undecodable empty answer, so name the cause (and the fix) instead
    require_smartkeys(w3, account, action="audit the account", block=end)
    auditor = _Auditor(w3, account, thresholds, names)
    logs = _fetch_logs(w3, account, from_block, end, chunk_size, progress)
    refusals: list[Refusal] = []
    if journal is not None:
        refusals = [r for r in journal.read(account=account, chain_id=chain_id)
                    if r.block_number is None or from_block - 1 <= r.block_number <= end]
    items: list[tuple[tuple[float, int, float], Any]] = [(log.order, log) for log in logs]
    items += [(_refusal_order(r), r) for r in refusals]
    items.sort(key=lambda x: x[0])
    for _, item in items:
        if isinstance(item, Refusal):
            auditor.apply_refusal(item)
        else:
            auditor.apply_log(item)
    auditor.read_gas_spent(end)
    if now is None:
        now = auditor.block_time(end)
    return auditor.report(chain_id, from_block, end, int(now))


def watch(
    w3: Any,
    account: str,
    *,
    from_block: int | None = None,
    poll_interval: float = 1.0,
    stop: threading.Event | None = None,
    journal: RefusalJournal | None = None,
    thresholds: AuditThresholds = AuditThresholds(),
    chunk_size: int | None = None,
) -> Iterator[AuditEntry]:
    """Follow the account: yield an :class:`AuditEntry` for each new event (and new journal refusal).

    History before ``from_block`` (default: the block after the latest) is replayed silently, so each
    entry's counters and flags are computed against everything before it. Polls every ``poll_interval``
    seconds; returns as soon as ``stop`` is set (checked between polls and between entries).
    """
    account = to_checksum_address(account)
    chain_id = int(w3.eth.chain_id)
    auditor = _Auditor(w3, account, thresholds)
    start = int(w3.eth.block_number) + 1 if from_block is None else int(from_block)
    seen_refusals = 0
    history: list[tuple[tuple[float, int, float], Any]] = []
    if start > 0:
        first = account_start_block(w3, account, to_block=start - 1)
        history += [(log.order, log) for log in _fetch_logs(w3, account, first, start - 1, chunk_size, None)]
    if journal is not None:
        old = journal.read(account=account, chain_id=chain_id)
        seen_refusals = len(old)
        history += [(_refusal_order(r), r) for r in old]
    history.sort(key=lambda x: x[0])
    for _, item in history:
        auditor.apply_refusal(item) if isinstance(item, Refusal) else auditor.apply_log(item)

    next_block = start
    while not (stop is not None and stop.is_set()):
        batch: list[tuple[tuple[float, int, float], Any]] = []
        latest = int(w3.eth.block_number)
        if latest >= next_block:
            batch += [(log.order, log) for log in _fetch_logs(w3, account, next_block, latest, chunk_size, None)]
            next_block = latest + 1
        if journal is not None:
            fresh = journal.read(account=account, chain_id=chain_id)
            batch += [(_refusal_order(r), r) for r in fresh[seen_refusals:]]
            seen_refusals = len(fresh)
        batch.sort(key=lambda x: x[0])
        for _, item in batch:
            entry = auditor.apply_refusal(item) if isinstance(item, Refusal) else auditor.apply_log(item)
            if entry is not None:
                yield entry
            if stop is not None and stop.is_set():
                return
        if stop is None:
            _time.sleep(poll_interval)
        elif stop.wait(poll_interval):
            return
