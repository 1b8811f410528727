"""Rotation and renewal of a live session: the successor policy, and the rules the account enforces on it.

``SmartKeysAccount.rotateSessionSigner(current, next)`` gives a live session a new key; ``renewSessionPolicy(current, next)``
moves its window end and lowers its limits. Either way, in one transaction, the old session id is revoked (its
key is refused from that block, on every path) and ``next`` is granted with the old counters copied exactly
(uses, native and gas spent, every token and native ledger, the rate-limit state), so nothing can be reset.

What a successor may change (the contract's ``_requireNoWidening``, mirrored by :func:`check_successor`):

=========================  ==================================================================================
``key``                    rotate: another address (not zero, not the account); renew: unchanged
``salt``                   anything (a fresh session id)
``valid_until``            later or earlier, not in the past
``max_uses``               lower (at least 1); an unlimited session stays unlimited (its uses were not counted)
``native_per_call``,       lower or equal
``native_total``,
``native_per_period``,
``gas_budget``,
token ``cap``/
``per_period``,
``uses_per_period``
``min_interval``           higher or equal (a shorter interval is a higher rate)
everything else            unchanged: ``valid_after``, permissions and argument rules, tokens and periods,
                           paymasters, flags, ``use_period``, ``native_period``
=========================  ==================================================================================

A cap may go down to what was already spent (nothing more to spend), not below: ``SuccessorBelowSpent(field,
asset, spent, proposed)``, since every cap check computes ``cap - spent``.
A raise is refused with ``SuccessorRaisesLimit(field, asset, current, proposed)`` and any other change with
``SuccessorChangesField(field, current, proposed)`` (for byte ranges the values are keccak256 hashes) -- the
same classes, fields and values here as on chain; ``field`` is the contract's (camelCase) name and the message
names the Python field and the fix. Pure: no network, no clock (``now`` is given).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from eth_utils import keccak

from smartkeys import artifacts
from smartkeys.encoding import checked_address
from smartkeys.errors import InvalidInputError, register_contract_errors
from smartkeys.policy_codec import SessionPolicy, TokenCap

__all__ = ["LOWERABLE_LIMITS", "check_successor", "preflight_succession", "successor_policy"]

_ERRORS = register_contract_errors(artifacts.load("SmartKeysAccount")["abi"])
_ZERO = "0x0000000000000000000000000000000000000000"

#: Limits a successor may lower (Python field names), as keyword arguments of :func:`successor_policy`.
LOWERABLE_LIMITS = ("max_uses", "native_per_call", "native_total", "native_per_period", "gas_budget",
                    "uses_per_period")

#: contract field name -> Python field name (for messages).
_PY = {
    "validAfter": "valid_after", "maxUses": "max_uses", "nativePerCall": "native_per_call",
    "nativeTotal": "native_total", "nativePeriod": "native_period", "nativePerPeriod": "native_per_period",
    "gasBudget": "gas_budget", "flags": "flags (allow_uncapped_assets, allow_standing_allowances, rate limit)",
    "permissionCount": "permissions", "permissions": "permissions", "tokenCount": "token_caps",
    "tokenCaps.token": "token_caps[].token", "tokenCaps.cap": "token_caps[].cap",
    "tokenCaps.period": "token_caps[].period", "tokenCaps.perPeriod": "token_caps[].per_period",
    "paymasterCount": "paymasters", "paymasters": "paymasters", "minInterval": "min_interval",
    "usesPerPeriod": "uses_per_period", "usePeriod": "use_period", "argumentRules": "permissions[].rules",
    "key": "key",
}


def _raises(field: str, asset: str, current: int, proposed: int) -> Exception:
    exc = _ERRORS["SuccessorRaisesLimit"](field, asset, current, proposed)
    py = _PY.get(field, field)
    if field == "minInterval":
        what = f"{proposed} s is shorter than the current {current} s (a higher rate)"
        fix = f"keep min_interval >= {current}"
    elif field == "maxUses" and proposed == 0:
        what = f"0 (unlimited) is above the current {current}"
        fix = f"give max_uses between 1 and {current}"
    else:
        what = f"{proposed} is above the current {current}"
        fix = f"keep {py} <= {current}"
    on = f" of token {asset}" if asset != _ZERO else ""
    Exception.__init__(exc, f"SuccessorRaisesLimit: {py}{on}: {what}; rotate and renew can only keep or lower a "
                            f"limit; fix: {fix}, or grant a new session (smartkeys grant) for a larger budget")
    return exc


def _changes(field: str, current: int, proposed: int) -> Exception:
    exc = _ERRORS["SuccessorChangesField"](field, current, proposed)
    py = _PY.get(field, field)
    if field == "maxUses":
        fix = "keep max_uses = 0: the session's uses were not counted, so a limit would start from zero"
    elif field == "key":
        fix = "renew keeps the key: use rotate (smartkeys rotate) to change it"
    else:
        fix = f"keep {py} as granted; grant a new session (smartkeys grant) for another scope"
    Exception.__init__(exc, f"SuccessorChangesField: {py} cannot change on rotate or renew "
                            f"(current {current:#x}, proposed {proposed:#x}); fix: {fix}")
    return exc


def _hash(data: bytes) -> int:
    return int.from_bytes(keccak(data), "big")


def _layout(p: SessionPolicy) -> tuple[int, int]:
    """(token-cap count offset, paymaster count offset) of the packed ``p`` (``SessionPolicy.sol``)."""
    t = 95 + 27 * len(p.permissions)
    return t, t + 1 + 52 * len(p.token_caps)


def check_successor(current: SessionPolicy, nxt: SessionPolicy, *, rotate: bool) -> None:
    """Raise what ``rotateSessionSigner`` (``rotate=True``) or ``renewSessionPolicy`` would for ``nxt`` replacing ``current``.

    Checks, in the contract's order: the key rule (rotate: another key, not the zero address; renew: the same
    key), then every field (see the module table). The window end against the block time, the liveness of
    ``current`` and whether ``nxt``'s id was used need the chain (:meth:`smartkeys.account.Owner.rotate_session`).
    Raises the contract's ``InvalidSessionKey``, ``SuccessorRaisesLimit`` or ``SuccessorChangesField``.
    """
    if rotate:
        if nxt.key == current.key or nxt.key == _ZERO:
            raise _ERRORS["InvalidSessionKey"](nxt.key)
    elif nxt.key != current.key:
        raise _changes("key", int(current.key, 16), int(nxt.key, 16))
    if nxt.valid_until <= nxt.valid_after:
        raise _ERRORS["InvalidWindow"](nxt.valid_after, nxt.valid_until)
    a, b = current, nxt

    def same(field: str, x: int, y: int) -> None:
        if x != y:
            raise _changes(field, x, y)

    def not_above(field: str, asset: str, x: int, y: int) -> None:
        if y > x:
            raise _raises(field, asset, x, y)

    same("validAfter", a.valid_after, b.valid_after)
    if a.max_uses == 0:
        same("maxUses", 0, b.max_uses)
    elif b.max_uses == 0 or b.max_uses > a.max_uses:
        raise _raises("maxUses", _ZERO, a.max_uses, b.max_uses)
    not_above("nativePerCall", _ZERO, a.native_per_call, b.native_per_call)
    not_above("nativeTotal", _ZERO, a.native_total, b.native_total)
    same("nativePeriod", a.native_period, b.native_period)
    not_above("nativePerPeriod", _ZERO, a.native_per_period, b.native_per_period)
    not_above("gasBudget", _ZERO, a.gas_budget, b.gas_budget)
    pa, pb = a.encode(), b.encode()
    same("flags", pa[93], pb[93])
    same("permissionCount", len(a.permissions), len(b.permissions))
    t, o = _layout(a)
    same("permissions", _hash(pa[95:t]), _hash(pb[95:t]))
    same("tokenCount", len(a.token_caps), len(b.token_caps))
    for ca, cb in zip(a.token_caps, b.token_caps, strict=True):  # counts checked equal above
        same("tokenCaps.token", int(ca.token, 16), int(cb.token, 16))
        not_above("tokenCaps.cap", ca.token, ca.cap, cb.cap)
        same("tokenCaps.period", ca.period, cb.period)
        not_above("tokenCaps.perPeriod", ca.token, ca.per_period, cb.per_period)
    same("paymasterCount", len(a.paymasters), len(b.paymasters))
    end = o + 1 + 20 * len(a.paymasters)
    same("paymasters", _hash(pa[o:end]), _hash(pb[o:end]))
    if a.rate_limited:
        if b.min_interval < a.min_interval:
            raise _raises("minInterval", _ZERO, a.min_interval, b.min_interval)
        not_above("usesPerPeriod", _ZERO, a.uses_per_period, b.uses_per_period)
        same("usePeriod", a.use_period, b.use_period)
        end += 12
    same("argumentRules", _hash(pa[end:]), _hash(pb[end:]))


def preflight_succession(current: SessionPolicy, nxt: SessionPolicy, state: Any, *, now: int, rotate: bool,
                         next_id_used: bool = False) -> None:
    """Everything ``rotateSessionSigner`` / ``renewSessionPolicy`` checks, in its order, for a block at time ``now``.

    ``state`` is ``current``'s :class:`smartkeys.preflight.SessionState` (``read_session_state``);
    ``next_id_used``: ``nxt``'s session id was granted before on this account. Raises the contract's error:
    the key rule, ``SessionNotActive`` / ``SessionEpochRevoked``, ``SessionExpired`` (``current`` ended),
    ``InvalidSessionKey``, ``InvalidWindow``, ``WindowAlreadyEnded``, the field rules of :func:`check_successor`,
    ``SessionAlreadyGranted``, then ``SuccessorBelowSpent(field, asset, spent, proposed)`` for a cap lowered
    below what was already spent (native and gas totals, then the native period, then each token).
    """
    sid = current.session_id
    if rotate and nxt.key == current.key:
        raise _ERRORS["InvalidSessionKey"](nxt.key)
    if not rotate and nxt.key != current.key:
        raise _changes("key", int(current.key, 16), int(nxt.key, 16))
    if not state.granted:
        raise _ERRORS["SessionNotActive"](sid)
    if state.granted_epoch != state.epoch:
        raise _ERRORS["SessionEpochRevoked"](sid, state.granted_epoch, state.epoch)
    if current.valid_until < now:
        raise _ERRORS["SessionExpired"](current.valid_until, now)
    if nxt.key in (_ZERO, state.account):
        raise _ERRORS["InvalidSessionKey"](nxt.key)
    if nxt.valid_until <= nxt.valid_after:
        raise _ERRORS["InvalidWindow"](nxt.valid_after, nxt.valid_until)
    if nxt.valid_until < now:
        raise _ERRORS["WindowAlreadyEnded"](nxt.valid_until, now)
    check_successor(current, nxt, rotate=rotate)
    if next_id_used:
        raise _ERRORS["SessionAlreadyGranted"](nxt.session_id)

    def not_below(field: str, asset: str, spent: int, proposed: int) -> None:
        if proposed < spent:
            exc = _ERRORS["SuccessorBelowSpent"](field, asset, spent, proposed)
            Exception.__init__(exc, f"SuccessorBelowSpent: {_PY.get(field, field)}"
                                    + (f" of token {asset}" if asset != _ZERO else "")
                                    + f": {proposed} is below the {spent} already spent; fix: give at least "
                                      f"{spent} (exactly {spent} leaves nothing more to spend), or revoke")
            raise exc

    def in_period(ledger: Any, period: int) -> int:
        return ledger.period_spent if period and ledger.period_index == now // period else 0

    not_below("nativeTotal", _ZERO, state.native_spent, nxt.native_total)
    not_below("gasBudget", _ZERO, state.gas_spent, nxt.gas_budget)
    if current.native_period:
        not_below("nativePerPeriod", _ZERO, in_period(state.native_ledger, current.native_period),
                  nxt.native_per_period)
    for cap in nxt.token_caps:
        ledger = state.tokens[cap.token]
        not_below("tokenCaps.cap", cap.token, ledger.total_spent, cap.cap)
        if cap.period:
            not_below("tokenCaps.perPeriod", cap.token, in_period(ledger, cap.period), cap.per_period)


def successor_policy(
    current: SessionPolicy,
    *,
    key: str | None = None,
    valid_until: int | None = None,
    token_caps: Mapping[str, int] | None = None,
    token_per_period: Mapping[str, int] | None = None,
    min_interval: int | None = None,
    salt: int | None = None,
    **limits: Any,
) -> SessionPolicy:
    """``current`` with a new ``key`` / ``valid_until`` / lower limits (nothing else can change).

    ``limits``: any of :data:`LOWERABLE_LIMITS` (on-chain units: wei, counts). ``token_caps`` /
    ``token_per_period`` map a capped token's address to its new cumulative / periodic cap (base units).
    Raises :class:`~smartkeys.errors.InvalidInputError` for an unknown keyword or a token the policy does not
    cap. The result is not checked: pass it to :func:`check_successor` (the Owner methods do).
    """
    unknown = sorted(set(limits) - set(LOWERABLE_LIMITS))
    if unknown:
        raise InvalidInputError(unknown[0], limits[unknown[0]], f"one of {', '.join(LOWERABLE_LIMITS)}",
                                "only limits can change on renew (and they can only go down); scope, periods and "
                                "flags stay as granted")
    changes: dict[str, Any] = {k: v for k, v in limits.items() if v is not None}
    if key is not None:
        changes["key"] = checked_address(key, "key")
    if valid_until is not None:
        changes["valid_until"] = valid_until
    if min_interval is not None:
        changes["min_interval"] = min_interval
    if salt is not None:
        changes["salt"] = salt
    if token_caps or token_per_period:
        caps = {checked_address(k, "token_caps"): v for k, v in dict(token_caps or {}).items()}
        per = {checked_address(k, "token_per_period"): v for k, v in dict(token_per_period or {}).items()}
        known = {c.token for c in current.token_caps}
        for token in [*caps, *per]:
            if token not in known:
                raise InvalidInputError("token_caps", token, f"a token the policy caps ({', '.join(sorted(known))})"
                                        if known else "a token the policy caps (it caps none)",
                                        "a successor keeps the policy's tokens: lower the cap of one of them")
        changes["token_caps"] = tuple(
            TokenCap(c.token, caps.get(c.token, c.cap), c.period, per.get(c.token, c.per_period))
            for c in current.token_caps)
    return dataclasses.replace(current, **changes)
