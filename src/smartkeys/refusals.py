"""Refusals in the policy's own units: what was asked, what is left, and what to do.

The contract's custom errors carry raw numbers (wei, base units, unix seconds, 4-byte selectors), and the
exception class built from the ABI cannot know a token's decimals. :class:`Units` holds what it needs
(token symbols and decimals, function names, the session's periods) and :func:`explain` turns a decoded
refusal into one sentence::

    >>> from smartkeys.errors import get_error_class
    >>> err = get_error_class("NativeValueAboveCallCap")(value=5 * 10**17, cap=10**17)
    >>> explain(err, Units())
    'asked to send 0.5 ETH in one call, but the session allows at most 0.1 ETH per call; send at most 0.1 ETH'

:meth:`smartkeys.errors.ContractRevertError.describe` calls it; :class:`smartkeys.account.SessionAgent` puts the
text into every refusal it raises (``str(err)``), keeping the class and its fields (``err.spent``, ``err.cap``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = ["Units", "duration_text", "explain", "refusal_from_fields", "units_for_policy"]

_NATIVE = "native"


def duration_text(seconds: int) -> str:
    """A short, rounded-down span for people: ``'2 h 5 min'``, ``'3 d 4 h'``, ``'40 s'``.

    >>> duration_text(7500), duration_text(3 * 86400 + 4 * 3600 + 9), duration_text(40)
    ('2 h 5 min', '3 d 4 h', '40 s')
    """
    seconds = max(0, int(seconds))
    parts = []
    for size, unit in ((86_400, "d"), (3_600, "h"), (60, "min"), (1, "s")):
        if seconds >= size:
            parts.append(f"{seconds // size} {unit}")
            seconds %= size
        if len(parts) == 2:
            break
    return " ".join(parts) or "0 s"


@dataclass(frozen=True)
class Units:
    """What turns raw refusal fields into the policy's units.

    ``tokens``: token address -> ``(symbol, decimals)``; ``functions``: 4-byte selector -> signature;
    ``policy``: the session's :class:`~smartkeys.policy_codec.SessionPolicy` (periods, scope, window), optional;
    ``names``: address -> name (a policy file's ``address_book``, ``contracts`` and ``tokens``), for recipients.
    """

    tokens: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    functions: Mapping[bytes, str] = field(default_factory=dict)
    policy: Any = None
    names: Mapping[str, str] = field(default_factory=dict)
    contract: ClassVar[Callable[[Units, str], str]]  # _contract_label, attached below

    def amount(self, asset: str, value: int) -> str:
        from smartkeys.audit import format_asset

        return format_asset(asset, int(value), dict(self.tokens))

    def function(self, selector: bytes | str) -> str:
        selector = bytes.fromhex(selector.removeprefix("0x")) if isinstance(selector, str) else bytes(selector)
        if selector == b"\x00\x00\x00\x00":
            return "a plain ETH transfer (empty calldata)"
        name = self.functions.get(selector) or _known_functions().get(selector)
        return name or f"function 0x{selector.hex()}"


def _contract_label(u: Units, address: str) -> str:
    meta = u.tokens.get(address)
    address = str(address)
    return f"{meta[0]} ({address[:6]}…{address[-4:]})" if meta else address


Units.contract = _contract_label


def _permission_label(u: Units, permission: Any) -> str:
    mode = int(getattr(permission, "mode", 0))
    if mode == 1:
        return "any function"
    if mode == 2:
        return "plain ETH transfers"
    if bytes(permission.selector) == b"\x00\x00\x00\x00":
        return "function 0x00000000"
    return u.function(permission.selector)


def _known_functions() -> dict[bytes, str]:
    from smartkeys.policy import _COMMON_SIGNATURES, selector_of

    return {selector_of(s): s for s in _COMMON_SIGNATURES}


def units_for_policy(w3: Any, policy: Any, *, signatures: tuple[str, ...] = (),
                     names: Mapping[str, str] | None = None) -> Units:
    """:class:`Units` for ``policy``: symbols and decimals read from chain (:func:`smartkeys.audit.token_meta`;
    a token that does not answer is shown in base units), function names from the common ERC-20 signatures
    plus ``signatures``, and ``names`` (address -> name, e.g. a policy file's address book) for recipients."""
    from smartkeys.audit import token_meta
    from smartkeys.policy import selector_of

    tokens: dict[str, tuple[str, int]] = {}
    addresses = {c.token for c in policy.token_caps} | {p.target for p in policy.permissions}
    for address in sorted(addresses):
        try:
            meta = token_meta(w3, address) if w3 is not None else None
        except Exception:  # noqa: BLE001 - names are a nicety; never hide the refusal behind them
            meta = None
        if meta is not None:
            tokens[address] = meta
    from eth_utils import to_checksum_address

    return Units(tokens=tokens, functions={selector_of(s): s for s in signatures}, policy=policy,
                 names={to_checksum_address(a): n for a, n in (names or {}).items()})


def _utc(ts: int) -> str:
    from smartkeys.timefmt import utc_text

    return utc_text(int(ts), sep=" ", suffix=" UTC")


def _period_of(policy: Any, asset: str) -> int:
    if policy is None:
        return 0
    if asset == _NATIVE:
        return int(policy.native_period)
    return next((int(c.period) for c in policy.token_caps if c.token == asset), 0)


def _cap_text(u: Units, asset: str, spent: int, requested: int, cap: int, scope: str, *, period: int = 0,
              now: int | None = None) -> str:
    spent, requested, cap = int(spent), int(requested), int(cap)
    left = max(0, cap - spent)
    what = f"asked for {u.amount(asset, requested)}, but "
    if left:
        what += (f"only {u.amount(asset, left)} of the session's {u.amount(asset, cap)} {scope} is left "
                 f"({u.amount(asset, spent)} spent{' this period' if period else ''})")
    else:
        what += f"the session's {u.amount(asset, cap)} {scope} is used up"
    todo = []
    if left:
        todo.append(f"send at most {u.amount(asset, left)}")
    if period:
        from smartkeys.timefmt import next_period_start

        if now is not None:
            reset = next_period_start(now, period)
            todo.append(f"wait until {_utc(reset)} (in {duration_text(reset - now)}) when the period resets")
        else:
            todo.append("wait for the period to reset")
    else:
        todo.append("ask the owner for a new session with a larger cap (renew can only lower caps)")
    return what + "; " + ", or ".join(todo)


def refusal_from_fields(name: str, fields: Mapping[str, Any]) -> Any:
    """A stand-in refusal (``error_name`` and ``args``) for :func:`explain`, from a journal's recorded name and
    JSON fields (ints as decimal strings, bytes as 0x-hex)."""
    from types import SimpleNamespace

    return SimpleNamespace(error_name=name, args=dict(fields), inner=None, revert=None)


def explain(err: Any, units: Units | None = None, *, now: int | None = None) -> str | None:
    """One sentence for a session refusal in human units, or None if ``err`` is not one this knows.

    ``now``: the chain time (unix seconds) for "wait until" and "N ago" (the error's own timestamp is used
    when it has one). A :class:`~smartkeys.errors.FailedOpWithRevert` is explained by its inner revert.
    """
    u = units or Units()
    inner = getattr(err, "inner", None) or getattr(err, "revert", None)
    if inner is not None and inner is not err and isinstance(inner, BaseException):
        text = explain(inner, u, now=now)
        if text is not None:
            return text
    name = getattr(err, "error_name", None) or getattr(err, "name", None)
    if not isinstance(name, str):
        return None
    f = getattr(err, "args", None)
    if not isinstance(f, dict):
        return None
    policy = u.policy
    if name == "NativeValueAboveCallCap":
        return (f"asked to send {u.amount(_NATIVE, f['value'])} in one call, but the session allows at most "
                f"{u.amount(_NATIVE, f['cap'])} per call; send at most {u.amount(_NATIVE, f['cap'])}")
    if name == "NativeSpendCapExceeded":
        return _cap_text(u, _NATIVE, f["spent"], f["requested"], f["cap"], "total")
    if name == "NativePeriodCapExceeded":
        period = _period_of(policy, _NATIVE)
        return _cap_text(u, _NATIVE, f["spent"], f["requested"], f["cap"], _scope(period), period=period, now=now)
    if name == "TokenSpendCapExceeded":
        return _cap_text(u, f["token"], f["spent"], f["requested"], f["cap"], "total")
    if name == "TokenPeriodCapExceeded":
        period = _period_of(policy, f["token"])
        return _cap_text(u, f["token"], f["spent"], f["requested"], f["cap"], _scope(period), period=period,
                         now=now)
    if name == "GasBudgetExceeded":
        if int(f["budget"]) == 0:
            return ("this session has no gas budget (gas_budget 0), so it cannot pay for a user operation's gas; "
                    "send directly (--via direct: the session key pays the gas), or ask the owner for a new "
                    "session with limits.gas_budget")
        left = max(0, int(f["budget"]) - int(f["spent"]))
        return (f"the operation may cost up to {u.amount('gas', f['requested'])} of gas, but only "
                f"{u.amount('gas', left)} of the session's {u.amount('gas', f['budget'])} gas budget is left; "
                "send directly (--via direct), or ask the owner for a new session with a larger gas_budget")
    if name == "SessionExpired":
        t = int(f.get("timestamp") or now or 0)
        until = int(f["validUntil"])
        return (f"the session expired at {_utc(until)} ({duration_text(t - until)} ago); "
                "ask the owner for a new session (an expired one cannot be renewed)")
    if name == "SessionNotYetValid":
        t = int(f.get("timestamp") or now or 0)
        after = int(f["validAfter"])
        return f"the session starts at {_utc(after)} (in {duration_text(after - t)}); wait until then"
    if name == "UsageLimitReached":
        return (f"the session's {f['maxUses']} uses are all used (0 left); "
                "ask the owner for a new session (renew cannot add uses)")
    if name in ("CallNotAllowed", "MulticallNotAllowed"):
        what = f"{u.function(f['selector'])} on {u.contract(f['target'])}"
        allowed = ""
        if policy is not None and policy.permissions:
            allowed = " (it allows: " + "; ".join(
                f"{_permission_label(u, p)} on {u.contract(p.target)}" for p in policy.permissions[:4]) + \
                ("; …" if len(policy.permissions) > 4 else "") + ")"
        verb = "a batch of" if name == "MulticallNotAllowed" else "calling"
        return (f"{verb} {what} is outside the session's scope{allowed}; "
                "ask the owner to add it to the policy and grant it")
    if name == "SessionNotActive":
        return "the session is not active (revoked, or never granted on this account); ask the owner to grant a new one"
    if name == "SessionEpochRevoked":
        return ("the owner revoked every session (revoke --all or a re-delegation) after this one was granted; "
                "ask the owner to grant a new one")
    if name == "ForbiddenTarget":
        return (f"calling {f['target']} is never allowed for a session (the account itself or the EntryPoint); "
                "call another contract")
    if name == "PaymasterNotAllowed":
        return f"the paymaster {f['paymaster']} is not in the session's paymasters; use no paymaster or an allowed one"
    if name == "ArgumentRuleViolated":
        return _argument_rule_text(u, f)
    if name == "UseTooSoon":
        last, interval = int(f["lastUse"]), int(f["minInterval"])
        t = int(f.get("timestamp") or now or 0)
        nxt = last + interval
        return (f"the session allows one use every {duration_text(interval)} and was last used at {_utc(last)}; "
                f"the next use is allowed from {_utc(nxt)} (in {duration_text(nxt - t)}): wait until then")
    if name == "UsesPerPeriodReached":
        from smartkeys.timefmt import next_period_start, period_text

        limit, period = int(f["limit"]), int(f["period"])
        text = f"the session's {limit} uses {period_text(period).split(' (')[0]} are used up ({int(f['used'])} used)"
        if now is not None and period:
            nxt = next_period_start(now, period)  # `now`: the time the use was checked at (the next block's)
            return text + f"; the next use is allowed from {_utc(nxt)} (in {duration_text(nxt - now)}): wait until then"
        return text + "; wait for the period to reset"
    if name == "UncappedAsset":
        return (f"{u.function(f['selector'])} on {u.contract(f['target'])} can move an asset the session has no cap for; "
                "ask the owner to add a cap for it")
    return None


def _argument_rule_text(u: Units, f: Mapping[str, Any]) -> str:
    """``ArgumentRuleViolated(target, selector, argIndex, op, value)`` in the policy's words: the argument and
    the value sent, the rule it broke (a recipient list by its names, a bound in the token's units) and the fix."""
    from smartkeys.argument_rules import RuleOp
    from smartkeys.policy_view import argument_name, rule_text, value_text

    target = str(f["target"])
    selector = bytes.fromhex(f["selector"].removeprefix("0x")) if isinstance(f["selector"], str) else bytes(f["selector"])
    index, op = int(f["argIndex"]), int(f["op"])
    raw = f["value"]
    word = int(raw, 16) if isinstance(raw, str) else int.from_bytes(bytes(raw), "big")
    functions = {bytes(k): v for k, v in dict(u.functions).items()}
    what = f"{u.function(selector)} on {u.contract(target)}"
    rule = None
    policy = u.policy
    if policy is not None:
        for p in policy.permissions:
            if p.target == target and bytes(p.selector) == selector:
                rule = next((r for r in p.rules if r.index == index and int(r.op) == op), rule)
    arg = argument_name(selector, index, functions)
    if rule is None:  # no policy to say more: the raw rule, still without base-unit guessing
        return (f"{what} with {arg} = {word} breaks the session's argument rule (op {RuleOp(op).name}); "
                "ask the owner what the policy allows")
    sent: Any = word  # the argument as its ABI type holds it (int, address text or bytes)
    if rule.abi_type == "address":
        sent = "0x" + word.to_bytes(32, "big")[-20:].hex()
    elif rule.abi_type.startswith("bytes"):
        sent = word.to_bytes(32, "big")[: int(rule.abi_type[5:])]
    elif rule.abi_type.startswith("int") and word >> 255:
        sent = word - 2**256
    kw: dict[str, Any] = dict(target=target, selector=selector, names=u.names, tokens=u.tokens, signatures=functions)
    try:
        got = value_text(rule, sent, **kw)
    except Exception:  # noqa: BLE001 - a word the type cannot hold (not canonical): show it raw
        got = f"0x{word:064x}"
    allowed = rule_text(rule, **kw)
    shown = [value_text(rule, v, **kw) for v in rule.values]
    r = RuleOp(op)
    if r is RuleOp.ONE_OF:
        return (f"{what}: {arg} {got} is not on the session's list [{', '.join(shown)}]; use one of them, or ask "
                f"the owner to add {got} to the policy's list")
    fix = {RuleOp.EQ: f"use {shown[0]}", RuleOp.NE: f"use another value than {shown[0]}",
           RuleOp.LE: f"use at most {shown[0]}", RuleOp.GE: f"use at least {shown[0]}"}.get(
        r, f"use a value from {shown[0]} to {shown[-1]}")
    return f"{what}: {arg} = {got} breaks the session's rule \"{allowed}\"; {fix}"


def _scope(period: int) -> str:
    if not period:
        return "per-period cap"
    from smartkeys.policy import _duration_text

    names = {60: "minute", 3_600: "hour", 86_400: "day", 604_800: "week"}
    return f"cap per {names.get(period) or _duration_text(period)}"
