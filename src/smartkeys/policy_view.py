"""A granted policy's argument rules and rate limits, as people and the JSON reports show them.

``smartkeys status``, ``smartkeys audit`` and the refusal texts (:mod:`smartkeys.refusals`) read a
:class:`~smartkeys.policy_codec.SessionPolicy` rebuilt from the chain, which holds addresses and base units
only. These pure functions give them back their names and units:

- :func:`rules_view`: every permission that carries argument rules, each rule with its values (addresses
  checksummed, numbers as decimal strings) and their human twins (``values_text``: address-book names,
  ``"50 USDC"``), plus one line of text as :meth:`smartkeys.policy.PolicyModel.describe` writes a ``where``
  table (``to one of [shop, treasury]``, ``amount <= 50 USDC``);
- :func:`rate_view`: the rate limits (``every``, uses per period) with the session's rate ledger: the last
  use, the uses in the current period and **when the next use is allowed** (``RateLimits.sol``: a use at
  ``t`` needs ``t >= last + min_interval`` and fewer than ``uses_per_period`` uses in ``t // use_period``).

``names`` maps addresses to names (a policy file's ``address_book``, ``contracts`` and ``tokens``:
:meth:`smartkeys.policy.PolicyModel.address_names`); ``tokens`` maps token addresses to ``(symbol,
decimals)`` (:func:`smartkeys.audit.token_meta`). Neither is required: without them addresses and base
units are shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from eth_utils import to_checksum_address

from smartkeys.argument_rules import WELL_KNOWN_ARGUMENTS, ArgumentRule, RuleOp, parameter_at, signature_parameters
from smartkeys.errors import InvalidInputError
from smartkeys.policy_codec import PermissionMode, SessionPolicy, selector_of

__all__ = ["next_use_at", "rate_lines", "rate_view", "rule_lines", "rules_view"]

_OP_TEXT = {RuleOp.EQ: "==", RuleOp.NE: "!=", RuleOp.LE: "<=", RuleOp.GE: ">="}
_SIGNATURES = {selector_of(s): s for s in WELL_KNOWN_ARGUMENTS}
#: The ERC-20 functions whose uint argument is an amount of the called token (shown in its units).
_AMOUNT_ARGUMENTS = {"amount"}


def signature_of(selector: bytes, signatures: Mapping[bytes, str] | None = None) -> str | None:
    """The signature of ``selector`` among ``signatures`` and the well-known ERC-20 functions, or None."""
    return (signatures or {}).get(bytes(selector)) or _SIGNATURES.get(bytes(selector))


def argument_name(selector: bytes, index: int, signatures: Mapping[bytes, str] | None = None) -> str:
    """The argument at ABI head word ``index`` (a rule's index), as a ``where`` table names it: its name in the
    known signature (``to``/``amount``/... for the ERC-20 functions, else the written name or ``argN``, N its
    place in the list); ``xs word 1`` for a word inside a static array or tuple; ``argN`` (N = the word) when
    the signature is unknown or does not parse. Source: :func:`smartkeys.argument_rules.signature_parameters`."""
    signature = signature_of(selector, signatures)
    if signature is None:
        return f"arg{index}"
    try:
        param = parameter_at(signature_parameters(signature)[1], index)
    except InvalidInputError:
        return f"arg{index}"
    if param is None:
        return f"word{index}"
    return param.name if param.slot == index else f"{param.name} word {index - param.slot}"


def _label(address: str, names: Mapping[str, str], tokens: Mapping[str, tuple[str, int]]) -> str:
    if address in names:
        return names[address]
    if address in tokens:
        return tokens[address][0]
    return address


def value_text(rule: ArgumentRule, value: Any, *, target: str, selector: bytes,
               names: Mapping[str, str] | None = None, tokens: Mapping[str, tuple[str, int]] | None = None,
               signatures: Mapping[bytes, str] | None = None) -> str:
    """One rule value for people: a name for a known address, ``"50 USDC"`` for an amount of the called token
    (exact, all its decimals), the number, ``true``/``false`` or 0x-hex otherwise."""
    from smartkeys.policy import format_amount

    names, tokens = names or {}, tokens or {}
    if rule.abi_type == "address":
        return _label(to_checksum_address(value), names, tokens)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if rule.abi_type == "bool" or isinstance(value, bool):
        return "true" if value else "false"
    if (rule.abi_type.startswith("uint") and target in tokens
            and argument_name(selector, rule.index, signatures) in _AMOUNT_ARGUMENTS):
        symbol, decimals = tokens[target]
        return format_amount(int(value), decimals, symbol)
    return str(value)


def rule_text(rule: ArgumentRule, *, target: str, selector: bytes, names: Mapping[str, str] | None = None,
              tokens: Mapping[str, tuple[str, int]] | None = None,
              signatures: Mapping[bytes, str] | None = None) -> str:
    """``"to one of [shop, treasury]"``, ``"amount <= 50 USDC"``, ``"arg2 1 .. 9"``: the words of a policy
    file's ``where`` table (:meth:`smartkeys.policy.PolicyModel.describe` writes the same)."""
    arg = argument_name(selector, rule.index, signatures)
    shown = [value_text(rule, v, target=target, selector=selector, names=names, tokens=tokens,
                        signatures=signatures) for v in rule.values]
    if rule.op is RuleOp.ONE_OF:
        return f"{arg} one of [{', '.join(shown)}]"
    if rule.op is RuleOp.RANGE:
        return f"{arg} {shown[0]} .. {shown[1]}"
    return f"{arg} {_OP_TEXT[rule.op]} {shown[0]}"


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)  # every number of the reports is a decimal string (exact beyond 2**53)
    return value


def rules_view(policy: SessionPolicy, *, names: Mapping[str, str] | None = None,
               tokens: Mapping[str, tuple[str, int]] | None = None,
               signatures: Mapping[bytes, str] | None = None) -> list[dict[str, Any]]:
    """The permissions of ``policy`` that carry argument rules, as the JSON reports give them::

        {"target": "0x…", "target_name": "USDC", "selector": "0xa9059cbb",
         "function": "transfer(address,uint256)",
         "rules": [{"index": 0, "argument": "to", "op": "one_of", "type": "address",
                    "values": ["0x…", "0x…"], "values_text": ["shop", "treasury"],
                    "text": "to one of [shop, treasury]"}, …],
         "text": "USDC transfer(address,uint256) where to one of [shop, treasury], amount <= 50 USDC"}

    Numbers are decimal strings, bytes 0x-hex; all rules of an entry must hold, and two entries for the same
    call are alternatives (either may allow it), as the contract checks them (``ArgumentRules.sol``).
    """
    names, tokens = dict(names or {}), dict(tokens or {})
    out = []
    for p in policy.permissions:
        if p.mode is not PermissionMode.EXACT or not p.rules:
            continue
        selector = cast(bytes, p.selector)  # normalized to bytes by Permission.__post_init__
        function = signature_of(selector, signatures)
        rules: list[dict[str, Any]] = []
        for r in p.rules:
            rules.append({
                "index": r.index, "argument": argument_name(selector, r.index, signatures),
                "op": r.op.name.lower(), "type": r.abi_type,
                "values": [_json_value(v) for v in r.values],
                "values_text": [value_text(r, v, target=p.target, selector=selector, names=names, tokens=tokens,
                                           signatures=signatures) for v in r.values],
                "text": rule_text(r, target=p.target, selector=selector, names=names, tokens=tokens,
                                  signatures=signatures),
            })
        label = _label(p.target, names, tokens)
        out.append({
            "target": p.target, "target_name": None if label == p.target else label,
            "selector": "0x" + bytes(selector).hex(), "function": function, "rules": rules,
            "text": f"{label} {function or '0x' + selector.hex()} where "
                    + ", ".join(r["text"] for r in rules),
        })
    return out


def rule_lines(policy: SessionPolicy, **kwargs: Any) -> list[str]:
    """One line per ruled permission (the ``text`` of :func:`rules_view`)."""
    return [entry["text"] for entry in rules_view(policy, **kwargs)]


def next_use_at(policy: SessionPolicy, ledger: Any, now: int) -> int:
    """The first unix second ``>= now`` at which the rate limits allow a use (``now`` if they allow it now).

    ``ledger`` is the session's rate ledger (:attr:`smartkeys.preflight.SessionState.rate_ledger`:
    ``total_spent`` = last use, ``period_spent`` uses in period ``period_index``). The window, caps and
    uses left are not considered here.
    """
    t = int(now)
    last = int(getattr(ledger, "total_spent", 0) or 0)
    if policy.min_interval and last:
        t = max(t, last + policy.min_interval)
    if policy.use_period:
        index = int(getattr(ledger, "period_index", 0) or 0)
        used = int(getattr(ledger, "period_spent", 0) or 0)
        if t // policy.use_period == index and used >= policy.uses_per_period:
            t = (index + 1) * policy.use_period
    return t


def rate_view(policy: SessionPolicy, ledger: Any = None, now: int | None = None) -> dict[str, Any] | None:
    """The rate limits of ``policy`` (None if it has none) and, with ``ledger`` and ``now``, where the session
    stands::

        {"min_interval": 600, "min_interval_text": "10 min",
         "uses_per_period": 20, "use_period": 86400, "use_period_rule": "per UTC day (…)",
         "last_use": 1767225600, "last_use_iso": "…", "uses_this_period": 3, "uses_left_this_period": 17,
         "period_resets_at": …, "period_resets_at_iso": "…",
         "next_use_at": 1767226200, "next_use_at_iso": "…", "next_use_in_text": "10 min",
         "text": "at most one use every 10 min; at most 20 uses per UTC day (…); next use allowed …"}

    Times are unix seconds with ``*_iso`` UTC text; ``now`` is the time of the next block (the first moment a
    use could happen). Without a ledger only the limits are given.
    """
    from smartkeys.refusals import duration_text
    from smartkeys.timefmt import next_period_start, period_text, utc_text

    if not policy.rate_limited:
        return None
    doc: dict[str, Any] = {"min_interval": policy.min_interval,
                           "min_interval_text": duration_text(policy.min_interval) if policy.min_interval else None,
                           "uses_per_period": policy.uses_per_period, "use_period": policy.use_period,
                           "use_period_rule": period_text(policy.use_period) if policy.use_period else None}
    parts = []
    if policy.min_interval:
        parts.append(f"at most one use every {duration_text(policy.min_interval)}")
    if policy.use_period:
        parts.append(f"at most {policy.uses_per_period} uses {period_text(policy.use_period, now)}")
    if ledger is not None and now is not None:
        now = int(now)
        last = int(ledger.total_spent) or None
        doc.update(last_use=last, last_use_iso=utc_text(last) if last else None)
        if policy.use_period:
            index = now // policy.use_period
            used = int(ledger.period_spent) if int(ledger.period_index) == index else 0
            resets = next_period_start(now, policy.use_period)
            doc.update(uses_this_period=used, uses_left_this_period=max(0, policy.uses_per_period - used),
                       period_resets_at=resets, period_resets_at_iso=utc_text(resets))
            parts.append(f"{used} used this period, {max(0, policy.uses_per_period - used)} left")
        nxt = next_use_at(policy, ledger, now)
        doc.update(next_use_at=nxt, next_use_at_iso=utc_text(nxt), next_use_in_text=duration_text(nxt - now))
        if nxt <= now:
            parts.append("next use allowed now")
        else:
            parts.append(f"next use allowed from {utc_text(nxt, sep=' ', suffix=' UTC')} "
                         f"(in {duration_text(nxt - now)})")
    doc["text"] = "; ".join(parts)
    return doc


def rate_lines(policy: SessionPolicy, ledger: Any = None, now: int | None = None) -> list[str]:
    """The ``text`` of :func:`rate_view` as a list (empty when the policy has no rate limits)."""
    view = rate_view(policy, ledger, now)
    return [view["text"]] if view else []
