"""Offline preflight: refuse a session use BEFORE anything is signed, exactly as the account would.

:func:`preflight` mirrors ``SmartKeysAccount.executeAsSession`` (and, on the user-operation path,
``_validateSessionOp`` plus the EntryPoint's time check) rule by rule, in the contract's order, and
raises the same typed error with the same field values (the class from
:func:`smartkeys.errors.get_error_class`). It needs the session's on-chain counters, read once with
:func:`read_session_state` (or built with :meth:`SessionState.fresh` for a session just granted).

Order of the checks (first failure wins, as on chain)::

    user-op path                         direct path
    ------------                         -----------
    empty batch (validateUserOp)         liveness
    liveness                             sender is the key         (only if ``sender`` is given)
    paymaster listed; gas budget         empty batch
    window: AA22 (EntryPoint)            window: SessionNotYetValid / SessionExpired
    ---- execution (both paths) ----------------------------------------------------------
    usage limit
    per call, in order: forbidden target, calldata 1-3 bytes, scope (multicall excluded for
    wildcards), on a capped token only accountable functions (TokenFunctionNotAccountable),
    declared ERC-20 amount (sums saturate at 2**256-1, as on chain), per-call native cap
    cumulative native cap, periodic native cap
    per capped token, in policy order, the declared sums: cumulative cap, periodic cap
    (the calls run here: each is charged max(declared, measured decrease), known only on chain;
    an ERC-20 call that returns false fails the use, TokenCallReturnedFalse, also only on chain)
    per capped token, in policy order: cumulative cap, periodic cap

On the user-op path the EntryPoint reports validation-stage errors (liveness, paymaster, gas budget)
as ``FailedOpWithRevert("AA23 reverted", inner)``; preflight raises the inner custom error itself.
A window miss on that path raises :class:`SessionWindowError`, a :class:`UserOperationError` with
code ``AA22`` that names the window.

What cannot be known offline: every call is *measured* by the contract (each capped balance before
and after it) and charged max(declared amount, measured decrease), so a fee-on-transfer token or a
router that pulls through an allowance is charged what actually left. Pass ``expected_outflows`` to
count what calls without a declared amount (``Charges.measured``) will move; otherwise those outflows,
and fees on top of declared amounts, are only checked on chain. Reverts of the called contracts
themselves (insufficient balance, ``Boom``) are likewise only seen on chain.

Speed: the per-policy lookup tables are built once and cached on the (frozen) policy object;
``scripts/bench_preflight.py`` measures the checks per second.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, cast

from smartkeys import artifacts
from smartkeys.account import Call, _status_word
from smartkeys.argument_rules import first_failure
from smartkeys.delegation import require_smartkeys
from smartkeys.deployments import ENTRY_POINT_V08
from smartkeys.encoding import checked_address, checked_uint
from smartkeys.errors import (
    ContractRevertError,
    InvalidInputError,
    UserOperationError,
    register_contract_errors,
)
from smartkeys.policy_codec import MULTICALL_SELECTORS, Permission, PermissionMode, SessionPolicy
from smartkeys.token_rules import ACCOUNTABLE_SELECTORS, DECLARED_AMOUNT_OFFSET

__all__ = [
    "ACCOUNT_ERRORS",
    "Charges",
    "Ledger",
    "SessionState",
    "SessionWindowError",
    "preflight",
    "preflight_many",
    "read_session_state",
]

_ACCOUNT_ABI = artifacts.load("SmartKeysAccount")["abi"]
#: The account's error classes by name (resolved from its ABI, so another ABI reusing a name -- an
#: overload that makes ``get_error_class(name)`` ambiguous -- cannot shadow them).
ACCOUNT_ERRORS = register_contract_errors(_ACCOUNT_ABI)

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
_ZERO4 = b"\x00\x00\x00\x00"
_U256 = 2**256


class _Errors:
    """The contract's error classes, resolved once."""

    def __init__(self) -> None:
        for name in (
            "SessionNotActive", "SessionEpochRevoked", "NotSessionKey", "SessionNotYetValid",
            "SessionExpired", "UsageLimitReached", "ForbiddenTarget", "CalldataTooShort",
            "CallNotAllowed", "NativeValueAboveCallCap", "NativeSpendCapExceeded",
            "NativePeriodCapExceeded", "TokenSpendCapExceeded", "TokenPeriodCapExceeded",
            "GasBudgetExceeded", "PaymasterNotAllowed", "EmptyBatch", "TokenFunctionNotAccountable",
            "ArgumentRuleViolated", "UseTooSoon", "UsesPerPeriodReached",
        ):
            setattr(self, name, ACCOUNT_ERRORS[name])

    def __getattr__(self, name: str) -> type[ContractRevertError]:
        # Only reached for a name not set above. Declared so type checkers know that every
        # attribute of _E is one of the contract's error classes.
        raise AttributeError(f"the account ABI names no error {name!r}")


_E = _Errors()


class SessionWindowError(UserOperationError):
    """User-op path: the EntryPoint would refuse the op with ``AA22 expired or not due``.

    ``valid_after`` (exclusive), ``valid_until`` (inclusive) and ``timestamp`` say why.
    """

    def __init__(self, valid_after: int, valid_until: int, timestamp: int) -> None:
        self.valid_after = valid_after
        self.valid_until = valid_until
        self.timestamp = timestamp
        when = "not yet valid" if timestamp <= valid_after else "expired"
        super().__init__(
            f"AA22 expired or not due: the session is {when} at block time {timestamp} "
            f"(window: after {valid_after}, until {valid_until} inclusive)",
            code="AA22",
        )


# --------------------------------------------------------------------------------------------
# state
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ledger:
    """One ledger word of a session (``sessionLedger``): a capped token or the periodic native allowance.

    ``period_index`` is ``timestamp // period`` of the period ``period_spent`` belongs to.
    ``total_spent`` is 0 for the native ledger (the native total lives in the status word).
    """

    total_spent: int = 0
    period_spent: int = 0
    period_index: int = 0


_EMPTY_LEDGER = Ledger()


@dataclass(frozen=True)
class SessionState:
    """A session's on-chain counters, as ``sessionStatus`` / ``sessionLedger`` / ``sessionEpoch`` report them.

    ``granted`` is True when the status word is non-zero and its revoked bit is clear;
    the session is :attr:`live` when, in addition, it was granted in the current ``epoch``.
    ``tokens`` maps each capped token (checksummed) to its :class:`Ledger`; ``native_ledger`` is the
    periodic native allowance. ``account`` is the smartkeys account (calls to it are forbidden).
    """

    account: str
    granted: bool
    uses: int = 0
    native_spent: int = 0
    gas_spent: int = 0
    granted_epoch: int = 0
    epoch: int = 0
    tokens: Mapping[str, Ledger] = field(default_factory=dict)
    native_ledger: Ledger = _EMPTY_LEDGER
    rate_ledger: Ledger = _EMPTY_LEDGER
    """Rate limits (``sessionLedger(id, account)``): ``total_spent`` is the last use's timestamp (0 = never),
    ``period_spent`` the uses in period ``period_index``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "account", checked_address(self.account, "account"))
        object.__setattr__(
            self, "tokens",
            MappingProxyType({checked_address(k, "tokens"): v for k, v in dict(self.tokens).items()}),
        )

    @property
    def live(self) -> bool:
        """Granted, not revoked, and granted in the current epoch (``sessionStatus().live``)."""
        return self.granted and self.granted_epoch == self.epoch

    @classmethod
    def fresh(cls, policy: SessionPolicy, account: str, *, now: int, epoch: int = 0) -> SessionState:
        """The state right after ``grantSession(policy)`` at block time ``now`` (nothing spent)."""
        tokens = {c.token: Ledger(0, 0, now // c.period if c.period else 0) for c in policy.token_caps}
        native = Ledger(0, 0, now // policy.native_period if policy.native_period else 0)
        rate = Ledger(0, 0, now // policy.use_period if policy.use_period else 0)
        return cls(account, True, 0, 0, 0, epoch, epoch, tokens, native, rate)

    def after(self, policy: SessionPolicy, charges: Charges, *, now: int) -> SessionState:
        """The state once a use with ``charges`` succeeded at block time ``now`` (as the contract writes it)."""
        tokens = dict(self.tokens)
        for cap in policy.token_caps:
            amount = charges.tokens.get(cap.token, 0)
            if not amount:
                continue
            old = tokens.get(cap.token, _EMPTY_LEDGER)
            if cap.period:
                index = now // cap.period
                in_period = old.period_spent if old.period_index == index else 0
                tokens[cap.token] = Ledger(old.total_spent + amount, in_period + amount, index)
            else:
                tokens[cap.token] = Ledger(old.total_spent + amount, old.period_spent, old.period_index)
        native = self.native_ledger
        if charges.native and policy.native_period:
            index = now // policy.native_period
            in_period = native.period_spent if native.period_index == index else 0
            native = Ledger(native.total_spent, in_period + charges.native, index)
        rate = self.rate_ledger
        if policy.rate_limited:
            if policy.use_period:
                index = now // policy.use_period
                rate = Ledger(now, (rate.period_spent if rate.period_index == index else 0) + 1, index)
            else:
                rate = Ledger(now, rate.period_spent, rate.period_index)
        return SessionState(
            self.account, self.granted, self.uses + charges.uses, self.native_spent + charges.native,
            self.gas_spent + charges.gas, self.granted_epoch, self.epoch, tokens, native, rate,
        )


@dataclass(frozen=True, slots=True)
class Charges:
    """What one session use would charge: ``native`` wei of call value, ``tokens`` (declared, plus the
    ``expected_outflows`` of measured calls), ``gas`` (user-op max cost without paymaster), ``uses``
    (1 when the policy limits uses), and ``measured`` (indices of the calls the contract will measure).
    """

    native: int = 0
    tokens: Mapping[str, int] = field(default_factory=dict)
    gas: int = 0
    uses: int = 0
    measured: tuple[int, ...] = ()




def read_session_state(w3: Any, account: str, policy: SessionPolicy) -> SessionState:
    """Read the session's counters from chain (``sessionStatus``, ``sessionLedger``, ``sessionEpoch``).

    Whether the session was individually revoked is not in ``sessionStatus`` (a revoked session keeps its
    counters, so it reports them); it is bit 255 of the status word, read from storage, so that
    :func:`preflight` picks the contract's error (``SessionNotActive`` vs ``SessionEpochRevoked``).
    """
    account = checked_address(account, "account")
    # Without smartkeys code the view calls below answer nothing (web3's BadFunctionCallOutput): say why instead.
    require_smartkeys(w3, account, action=f"use session 0x{policy.session_id.hex()}")
    contract = w3.eth.contract(address=account, abi=_ACCOUNT_ABI)
    sid = policy.session_id
    live, uses, native, gas, granted_epoch = contract.functions.sessionStatus(sid).call()
    epoch = int(contract.functions.sessionEpoch().call())
    if live:
        granted = True
    else:
        word = _status_word(w3, account, sid)  # the one reader of the raw word (account.py)
        granted = word != 0 and not word >> 255
    tokens = {}
    for cap in policy.token_caps:
        total, period_spent, index = contract.functions.sessionLedger(sid, cap.token).call()
        tokens[cap.token] = Ledger(int(total), int(period_spent), int(index))
    native_ledger = _EMPTY_LEDGER
    if policy.native_period:
        _, period_spent, index = contract.functions.sessionLedger(sid, ZERO_ADDRESS).call()
        native_ledger = Ledger(0, int(period_spent), int(index))
    rate_ledger = _EMPTY_LEDGER
    if policy.rate_limited:
        last, period_uses, index = contract.functions.sessionLedger(sid, account).call()
        rate_ledger = Ledger(int(last), int(period_uses), int(index))
    return SessionState(
        account, granted, int(uses), int(native), int(gas), int(granted_epoch), epoch, tokens, native_ledger,
        rate_ledger,
    )


# --------------------------------------------------------------------------------------------
# per-policy tables
# --------------------------------------------------------------------------------------------

_CACHE_ATTR = "_smartkeys_preflight_tables"


class _Tables:
    """Lookup tables of one policy. ``scope[target] = (exact selectors, any, empty)``."""

    __slots__ = (
        "session_id", "key", "valid_after", "valid_until", "max_uses", "native_per_call", "native_total",
        "native_period", "native_per_period", "gas_budget", "scope", "caps", "cap_order", "paymasters", "ruled",
        "rate",
    )

    def __init__(self, policy: SessionPolicy) -> None:
        self.session_id = policy.session_id
        self.key = policy.key
        self.valid_after = policy.valid_after
        self.valid_until = policy.valid_until
        self.max_uses = policy.max_uses
        self.native_per_call = policy.native_per_call
        self.native_total = policy.native_total
        self.native_period = policy.native_period
        self.native_per_period = policy.native_per_period
        self.gas_budget = policy.gas_budget
        scope: dict[str, tuple[set[bytes], bool, bool]] = {}
        for p in policy.permissions:
            exact, any_, empty = scope.get(p.target, (set(), False, False))
            if p.mode is PermissionMode.EXACT:
                exact = exact | {cast(bytes, p.selector)}  # EXACT: __post_init__ made it bytes
            elif p.mode is PermissionMode.ANY_SELECTOR:
                any_ = True
            else:
                empty = True
            scope[p.target] = (exact, any_, empty)
        self.scope = {t: (frozenset(e), a, m) for t, (e, a, m) in scope.items()}
        self.rate = ((policy.min_interval, policy.uses_per_period, policy.use_period)
                     if policy.rate_limited else None)
        # targets with argument rules: every permission of the target, in policy order (the contract's loop)
        self.ruled = {
            t: tuple(p for p in policy.permissions if p.target == t)
            for t in {p.target for p in policy.permissions if p.rules}
        }
        # token -> (index j, cap, period, per_period); first listing wins (grant refuses duplicates)
        caps: dict[str, tuple[int, int, int, int]] = {}
        for j, c in enumerate(policy.token_caps):
            caps.setdefault(c.token, (j, c.cap, c.period, c.per_period))
        self.caps = caps
        self.cap_order = tuple(c.token for c in policy.token_caps)
        self.paymasters = frozenset(policy.paymasters)


def _tables(policy: SessionPolicy) -> _Tables:
    tables = policy.__dict__.get(_CACHE_ATTR)
    if tables is None:
        if not isinstance(policy, SessionPolicy):
            raise InvalidInputError("policy", policy, "a SessionPolicy", "decode it with SessionPolicy.decode")
        tables = _Tables(policy)
        policy.__dict__[_CACHE_ATTR] = tables  # frozen dataclass: cache outside the fields
    return tables


def _call_parts(call: Any) -> tuple[str, int, bytes]:
    """(checksummed target, value, data) of a ``(target, value, data)`` tuple or any object with those fields."""
    if isinstance(call, (tuple, list)):
        target, value, data = call
    else:
        target, value, data = call.target, call.value, call.data
    if isinstance(data, str):
        data = bytes.fromhex(data.removeprefix("0x"))
    return checked_address(target, "call.target"), checked_uint(value, "call.value"), bytes(data)


# --------------------------------------------------------------------------------------------
# preflight
# --------------------------------------------------------------------------------------------


def preflight(
    policy: SessionPolicy,
    state: SessionState,
    calls: Sequence[Any],
    *,
    now: int,
    via_user_op: bool,
    max_gas_cost: int | None = None,
    paymaster: str | None = None,
    expected_outflows: Mapping[str, int] | None = None,
    sender: str | None = None,
) -> Charges:
    """Apply the account's session rules offline; return the :class:`Charges` or raise its error.

    ``now`` is the block timestamp the use is expected to execute at. ``via_user_op`` selects the
    path: a user operation (``max_gas_cost`` = ``op.max_gas_cost()`` is then required unless a
    ``paymaster`` pays) or a direct transaction (``sender``, if given, must be the session key).
    ``expected_outflows`` (token -> base units) counts what *measured* calls will move; it is used
    only when some call is measured, and only for capped tokens, exactly as the contract would charge
    a measured decrease. Without it, measured outflows are only checked on chain.

    Raises the contract's custom error (``get_error_class(name)`` instance, same fields),
    :class:`SessionWindowError` (AA22) for a window miss on the user-op path, and
    :class:`~smartkeys.errors.InvalidInputError` for malformed arguments.
    """
    t = policy.__dict__.get(_CACHE_ATTR) or _tables(policy)
    sid = t.session_id

    if via_user_op and not calls:
        raise _E.EmptyBatch()  # _validateSessionOp refuses it before anything else
    # liveness (_requireLive)
    if not state.granted:
        raise _E.SessionNotActive(sessionId=sid)
    if state.granted_epoch != state.epoch:
        raise _E.SessionEpochRevoked(sessionId=sid, grantedEpoch=state.granted_epoch, currentEpoch=state.epoch)

    gas = 0
    if via_user_op:
        # _validateSessionOp: the paymaster, if any, must be listed; and whoever pays first, the op's whole
        # possible cost (paymaster gas limits included: a token paymaster takes it back from the account in
        # postOp) must fit the gas budget.
        if paymaster is not None:
            pm = checked_address(paymaster, "paymaster")
            if pm not in t.paymasters:
                raise _E.PaymasterNotAllowed(paymaster=pm)
        if max_gas_cost is None:
            raise InvalidInputError(
                "max_gas_cost", None, "the op's maximum gas cost (wei) on the user-op path",
                "pass max_gas_cost=op.max_gas_cost() (the account's gas budget is charged with it, "
                "paymaster or not)",
            )
        cost = checked_uint(max_gas_cost, "max_gas_cost")
        spent = state.gas_spent
        if spent + cost > t.gas_budget:
            raise _E.GasBudgetExceeded(spent=spent, requested=cost, budget=t.gas_budget)
        gas = cost
        # the EntryPoint's time check on validationData (v0.8: validAfter exclusive, validUntil inclusive)
        if not t.valid_after < now <= t.valid_until:
            raise SessionWindowError(t.valid_after, t.valid_until, now)
    else:
        if sender is not None and checked_address(sender, "sender") != t.key:
            raise _E.NotSessionKey(caller=checked_address(sender, "sender"), key=t.key)
        if not calls:
            raise _E.EmptyBatch()
        if now <= t.valid_after:
            raise _E.SessionNotYetValid(validAfter=t.valid_after, timestamp=now)
        if now > t.valid_until:
            raise _E.SessionExpired(validUntil=t.valid_until, timestamp=now)

    max_uses = t.max_uses
    if max_uses and state.uses >= max_uses:
        raise _E.UsageLimitReached(maxUses=max_uses)
    if t.rate is not None:  # RateLimits.charge
        min_interval, limit, period = t.rate
        rate = state.rate_ledger
        if min_interval and rate.total_spent and now < rate.total_spent + min_interval:
            raise _E.UseTooSoon(lastUse=rate.total_spent, minInterval=min_interval, timestamp=now)
        if period:
            used = rate.period_spent if rate.period_index == now // period else 0
            if used >= limit:
                raise _E.UsesPerPeriodReached(limit=limit, period=period, used=used)

    # 1. scope, per-call native cap, declared outflows -- per call, in order
    account = state.account
    scope = t.scope
    caps = t.caps
    value = 0
    charged: dict[str, int] | None = None
    measured: list[int] | None = None
    for i, call in enumerate(calls):
        if type(call) is Call:  # already checksummed and bytes
            target = call.target
            v = call.value
            data = call.data
        else:
            target, v, data = _call_parts(call)
        if target == account or target == ENTRY_POINT_V08 or target == ZERO_ADDRESS:
            raise _E.ForbiddenTarget(target=target)
        n = len(data)
        if n == 0:
            sel = _ZERO4
        elif n < 4:
            raise _E.CalldataTooShort(target=target, length=n)
        else:
            sel = data[:4]
        perm = scope.get(target)
        if perm is None:
            raise _E.CallNotAllowed(target=target, selector=sel)
        if n == 0:
            if not (perm[1] or perm[2]):
                raise _E.CallNotAllowed(target=target, selector=sel)
        elif sel not in perm[0] and not (perm[1] and sel not in MULTICALL_SELECTORS):
            raise _E.CallNotAllowed(target=target, selector=sel)
        elif t.ruled and target in t.ruled:
            _check_argument_rules(t.ruled[target], target, sel, data)
        if caps:
            offset = None
            if target in caps:
                if n == 0 or sel not in ACCOUNTABLE_SELECTORS:
                    raise _E.TokenFunctionNotAccountable(token=target, selector=sel)
                offset = DECLARED_AMOUNT_OFFSET.get(sel)
            if offset is None or n < offset + 32:
                if measured is None:
                    measured = []
                measured.append(i)
            else:
                if charged is None:
                    charged = {}
                # saturating, as the contract's _saturatingAdd
                total = charged.get(target, 0) + int.from_bytes(data[offset : offset + 32], "big")
                charged[target] = min(total, _U256 - 1)
        if v:
            if v > t.native_per_call:
                raise _E.NativeValueAboveCallCap(value=v, cap=t.native_per_call)
            value += v

    # cumulative and periodic native (_chargeNative)
    if value:
        spent = state.native_spent
        if spent + value > t.native_total:
            raise _E.NativeSpendCapExceeded(spent=spent, requested=value, cap=t.native_total)
        period = t.native_period
        if period:
            ledger = state.native_ledger
            in_period = ledger.period_spent if ledger.period_index == now // period else 0
            if in_period + value > t.native_per_period:
                raise _E.NativePeriodCapExceeded(spent=in_period, requested=value, cap=t.native_per_period)

    # declared sums, checked before any call runs (so an over-cap transfer is refused as such)
    if charged:
        _check_token_caps(t, state, charged, now)

    # 2. the calls run here; measured calls add what the caller expects them to move
    if measured is not None and expected_outflows:
        added = False
        for token, amount in expected_outflows.items():
            token = checked_address(token, "expected_outflows")
            amount = checked_uint(amount, f"expected_outflows[{token}]")
            if amount and token in caps:
                if charged is None:
                    charged = {}
                charged[token] = min(charged.get(token, 0) + amount, _U256 - 1)
                added = True
        # 3. token caps against what will be charged, in policy order (_checkTokenCap)
        if added and charged is not None:  # added implies charged
            _check_token_caps(t, state, charged, now)
    if charged:
        charged = {k: v for k, v in charged.items() if v}

    return Charges(
        value, charged or {}, gas, 1 if max_uses else 0, tuple(measured) if measured is not None else ()
    )


def _check_argument_rules(perms: Sequence[Permission], target: str, sel: bytes, data: bytes) -> None:
    """``_checkScope``'s loop for a target with argument rules: the first permission that holds whole allows the
    call; otherwise the last failed rule is reported (``ArgumentRuleViolated``)."""
    failed = None
    for p in perms:
        if p.mode is PermissionMode.ANY_SELECTOR:
            if sel not in MULTICALL_SELECTORS:
                return
        elif p.mode is PermissionMode.EXACT and p.selector == sel:
            miss = first_failure(p.rules, data)
            if miss is None:
                return
            failed = miss
    if failed is None:  # only reachable for calls the fast path already refused
        raise _E.CallNotAllowed(target=target, selector=sel)
    rule, word = failed
    raise _E.ArgumentRuleViolated(target=target, selector=sel, argIndex=rule.index, op=int(rule.op),
                                  value=word.to_bytes(32, "big"))


def _check_token_caps(t: _Tables, state: SessionState, charged: Mapping[str, int], now: int) -> None:
    """Each capped token's cumulative, then periodic cap, in policy order, as ``_checkTokenCap``."""
    tokens = state.tokens
    for token in t.cap_order:
        amount = charged.get(token)
        if not amount:
            continue
        _, cap_total, period, per_period = t.caps[token]
        ledger = tokens.get(token, _EMPTY_LEDGER)
        spent = ledger.total_spent
        if spent + amount > cap_total:
            raise _E.TokenSpendCapExceeded(token=token, spent=spent, requested=amount, cap=cap_total)
        if period:
            in_period = ledger.period_spent if ledger.period_index == now // period else 0
            if in_period + amount > per_period:
                raise _E.TokenPeriodCapExceeded(token=token, spent=in_period, requested=amount, cap=per_period)


def preflight_many(
    policy: SessionPolicy, state: SessionState, batches: Iterable[Sequence[Any]], *, now: int, via_user_op: bool,
    **kwargs: Any,
) -> list[Charges]:
    """Preflight several uses in sequence (each sees the previous ones' charges); all or nothing."""
    out = []
    for calls in batches:
        charges = preflight(policy, state, calls, now=now, via_user_op=via_user_op, **kwargs)
        state = state.after(policy, charges, now=now)
        out.append(charges)
    return out
