"""Tool descriptions for AI agents, generated from a session policy, and the way back to a ``Call``.

:func:`tool_definitions` turns every permitted (contract, function) of a :class:`SessionPolicy` into one
JSON-schema tool (OpenAI ``{"type": "function", "function": {...}}`` or Anthropic ``{"name", "description",
"input_schema"}``), whose description states the session's limits in human units. :func:`call_from_tool`
turns the model's tool call back into a :class:`~smartkeys.account.Call`, validating every argument first
(errors name the argument).

Tools per permission mode:

- exact selector: ``<name>_<function>`` with typed arguments, from ``abis[target]`` (or a built-in ERC-20
  ABI for the standard token functions); an unknown selector gives ``<name>_0x<selector>`` taking the
  ABI-encoded arguments as hex;
- any selector: one tool per state-changing function of ``abis[target]`` (multicall-type functions, which
  the account refuses, and view functions are left out), or a generic ``call_<name>`` tool taking
  calldata if no ABI is given; plus ``send_native_to_<name>`` when the policy allows native value;
- empty calldata: ``send_native_to_<name>``.

Argument types: ``address`` -> string ``^0x[0-9a-fA-F]{40}$``; ``uintN`` -> integer or decimal string,
minimum 0; ``intN`` -> integer or decimal string; ``bool``; ``bytes``/``bytesN`` -> 0x-hex string;
``string``; arrays -> arrays; tuples -> objects. Amounts are in base units (the description says how
many decimals a token has).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

from eth_abi import encode as abi_encode
from eth_utils import keccak

from smartkeys.account import Call
from smartkeys.argument_rules import ArgumentRule, Parameter, RuleOp, abi_kind, parameter_at, parameters_of
from smartkeys.encoding import checked_address
from smartkeys.errors import InvalidInputError
from smartkeys.policy_codec import MULTICALL_SELECTORS, PermissionMode, SessionPolicy
from smartkeys.timefmt import period_text, utc_text

__all__ = ["ERC20_ABI", "call_from_tool", "tool_definitions"]

#: Built-in ABI for the standard ERC-20 outflow functions (used when no ABI is given for a token).
ERC20_ABI: list[dict[str, Any]] = [
    {"type": "function", "name": "transfer", "stateMutability": "nonpayable",
     "inputs": [{"name": "to", "type": "address"}, {"name": "amount", "type": "uint256"}]},
    {"type": "function", "name": "approve", "stateMutability": "nonpayable",
     "inputs": [{"name": "spender", "type": "address"}, {"name": "amount", "type": "uint256"}]},
    {"type": "function", "name": "transferFrom", "stateMutability": "nonpayable",
     "inputs": [{"name": "from", "type": "address"}, {"name": "to", "type": "address"},
                {"name": "amount", "type": "uint256"}]},
    {"type": "function", "name": "increaseAllowance", "stateMutability": "nonpayable",
     "inputs": [{"name": "spender", "type": "address"}, {"name": "added", "type": "uint256"}]},
]

_ADDRESS_PATTERN = "^0x[0-9a-fA-F]{40}$"
_HEX_PATTERN = "^0x([0-9a-fA-F]{2})*$"
_UINT_PATTERN = "^[0-9]{1,78}$"
_INT_PATTERN = "^-?[0-9]{1,77}$"
_NAME_RE = re.compile(r"[^a-zA-Z0-9_]+")
_MAX_NAME = 64


# --------------------------------------------------------------------------------------------
# ABI helpers
# --------------------------------------------------------------------------------------------


def _abi_type(param: Mapping[str, Any]) -> str:
    typ = param["type"]
    if typ.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in param.get("components", [])) + ")" + typ[len("tuple"):]
    return typ


def _signature(fn: Mapping[str, Any]) -> str:
    return f"{fn['name']}({','.join(_abi_type(p) for p in fn.get('inputs', []))})"


def _selector(fn: Mapping[str, Any]) -> bytes:
    return keccak(text=_signature(fn))[:4]


def _functions(abi: Any) -> list[dict[str, Any]]:
    if isinstance(abi, Mapping):
        abi = abi.get("abi", [])
    return [dict(e) for e in abi if isinstance(e, Mapping) and e.get("type") == "function"]


def _schema(param: Mapping[str, Any]) -> dict[str, Any]:
    """JSON schema of one ABI parameter."""
    typ = param["type"]
    if typ.endswith("]"):
        start = typ.rindex("[")
        size = typ[start + 1 : -1]
        inner = dict(param, type=typ[:start])
        out: dict[str, Any] = {"type": "array", "items": _schema(inner)}
        if size:
            out["minItems"] = out["maxItems"] = int(size)
        return out
    if typ == "tuple":
        components = param.get("components", [])
        names = [c.get("name") or f"field{i}" for i, c in enumerate(components)]
        return {
            "type": "object",
            "properties": {n: _schema(c) for n, c in zip(names, components, strict=True)},
            "required": names,
            "additionalProperties": False,
        }
    if typ == "address":
        return {"type": "string", "pattern": _ADDRESS_PATTERN, "description": "0x-prefixed 20-byte address"}
    if typ == "bool":
        return {"type": "boolean"}
    if typ == "string":
        return {"type": "string"}
    if typ == "bytes":
        return {"type": "string", "pattern": _HEX_PATTERN, "description": "0x-prefixed hex bytes"}
    if typ.startswith("bytes"):
        n = int(typ[5:])
        return {"type": "string", "pattern": f"^0x[0-9a-fA-F]{{{2 * n}}}$", "description": f"0x-prefixed {n} bytes"}
    if typ.startswith("uint"):
        bits = int(typ[4:] or 256)
        out = {"type": ["integer", "string"], "minimum": 0, "pattern": _UINT_PATTERN,
               "description": f"uint{bits} (base units; a decimal string for large values)"}
        if bits <= 52:
            out["maximum"] = 2**bits - 1
        return out
    if typ.startswith("int"):
        return {"type": ["integer", "string"], "pattern": _INT_PATTERN, "description": f"{typ} (decimal)"}
    raise InvalidInputError("abi", typ, "a Solidity ABI type", "check the ABI")


def _coerce(name: str, param: Mapping[str, Any], value: Any) -> Any:
    """A JSON argument as the Python value eth_abi encodes; InvalidInputError naming ``name``."""
    typ = param["type"]

    def bad(expected: str, hint: str | None = None) -> InvalidInputError:
        return InvalidInputError(f"arguments.{name}", value, expected, hint)

    if typ.endswith("]"):
        start = typ.rindex("[")
        size = typ[start + 1 : -1]
        if not isinstance(value, list):
            raise bad(f"an array ({typ})")
        if size and len(value) != int(size):
            raise bad(f"exactly {size} items")
        inner = dict(param, type=typ[:start])
        return [_coerce(f"{name}[{i}]", inner, v) for i, v in enumerate(value)]
    if typ == "tuple":
        components = param.get("components", [])
        names = [c.get("name") or f"field{i}" for i, c in enumerate(components)]
        if not isinstance(value, Mapping):
            raise bad("an object with fields " + ", ".join(names))
        extra = set(value) - set(names)
        if extra:
            raise bad(f"only the fields {', '.join(names)}", f"remove {', '.join(sorted(extra))}")
        missing = [n for n in names if n not in value]
        if missing:
            raise InvalidInputError(f"arguments.{name}.{missing[0]}", None, "a value", "add the missing field")
        return tuple(_coerce(f"{name}.{n}", c, value[n]) for n, c in zip(names, components, strict=True))
    if typ == "address":
        if not isinstance(value, str) or not re.match(_ADDRESS_PATTERN, value):
            raise bad("an address (0x + 40 hex digits)")
        return checked_address(value, f"arguments.{name}")
    if typ == "bool":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if typ == "string":
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if typ.startswith("bytes"):
        if not isinstance(value, str) or not re.match(_HEX_PATTERN, value):
            raise bad("0x-prefixed hex with an even number of digits")
        raw = bytes.fromhex(value[2:])
        if typ != "bytes" and len(raw) != int(typ[5:]):
            raise bad(f"exactly {typ[5:]} bytes")
        return raw
    if typ.startswith(("uint", "int")):
        signed = typ.startswith("int")
        bits = int(typ[3 if signed else 4:] or 256)
        if isinstance(value, bool):
            raise bad(f"an integer ({typ})")
        if isinstance(value, str) and re.match(_INT_PATTERN if signed else _UINT_PATTERN, value):
            value = int(value)
        elif isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            value = int(value)
        if not isinstance(value, int):
            raise bad(f"an integer ({typ}) or a decimal string", "amounts are integers in base units")
        low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        if not low <= value <= high:
            raise bad(f"an integer from {low} to {high}")
        return value
    raise bad(f"a value of type {typ}")


# --------------------------------------------------------------------------------------------
# specs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tool:
    name: str
    target: str
    kind: str  # "function" | "raw_args" | "calldata" | "native"
    function: dict[str, Any] | None
    selector: bytes
    payable: bool
    description: str
    #: argument position -> JSON-schema keywords from the permission's argument rules (enum, minimum, maximum)
    constraints: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: argument position -> {enum name: address} for recipient lists given as names
    aliases: dict[int, dict[str, str]] = field(default_factory=dict)

    def schema(self, native_cap: int) -> dict[str, Any]:
        props: dict[str, Any] = {}
        required: list[str] = []
        if self.kind == "function":
            for i, p in enumerate(self.function.get("inputs", [])):  # type: ignore[union-attr]
                pname = p.get("name") or f"arg{i}"
                props[pname] = _schema(p)
                if i in self.constraints:
                    extra = dict(self.constraints[i])
                    if "enum" in extra:  # names replace the address pattern
                        props[pname] = {"type": "string"}
                    if "description" in extra and "description" in props[pname]:
                        extra["description"] = props[pname]["description"] + "; " + extra["description"]
                    props[pname].update(extra)
                required.append(pname)
        elif self.kind == "raw_args":
            props["args"] = {"type": "string", "pattern": _HEX_PATTERN,
                             "description": "ABI-encoded arguments (without the selector), 0x-hex"}
            required.append("args")
        elif self.kind == "calldata":
            props["data"] = {"type": "string", "pattern": "^0x([0-9a-fA-F]{8})([0-9a-fA-F]{2})*$",
                             "description": "full calldata: 4-byte selector then ABI-encoded arguments"}
            required.append("data")
        if self.payable:
            value = {"type": ["integer", "string"], "minimum": 0, "pattern": _UINT_PATTERN,
                     "description": f"native value in wei, at most {native_cap} per call"}
            props["value"] = value
            if self.kind == "native":
                required.append("value")
        return {"type": "object", "properties": props, "required": required, "additionalProperties": False}


def _tool_name(*parts: str) -> str:
    name = "_".join(_NAME_RE.sub("_", p).strip("_").lower() for p in parts if p)
    name = re.sub("_+", "_", name) or "tool"
    return name[:_MAX_NAME]


def _units(amount: int, decimals: int | None, symbol: str) -> str:
    if decimals is None:
        return f"{amount} base units of {symbol}"
    text = format(Decimal(amount).scaleb(-decimals).normalize(), "f") if amount else "0"
    return f"{text} {symbol}"


def _limits(policy: SessionPolicy, tokens: Mapping[str, tuple[str, int]], names: Mapping[str, str],
            state: Any, now: int | None = None) -> str:
    until = utc_text(policy.valid_until, sep=" ", suffix=" UTC")  # any uint48 time, years past 9999 included
    parts = [f"Session valid until {until} (unix {policy.valid_until})."]
    if policy.max_uses:
        used = getattr(state, "uses", None)
        left = f", {policy.max_uses - used} remaining" if used is not None else ""
        parts.append(f"At most {policy.max_uses} uses in total{left}.")
    if policy.rate_limited:
        from smartkeys.policy_view import next_use_at
        from smartkeys.refusals import duration_text

        rate = getattr(state, "rate_ledger", None)
        if policy.min_interval:
            parts.append(f"At most one use every {duration_text(policy.min_interval)} ({policy.min_interval} s).")
        if policy.use_period:
            text = f"At most {policy.uses_per_period} uses {period_text(policy.use_period, now)}"
            if rate is not None and now is not None and rate.period_index == now // policy.use_period:
                text += f" ({max(0, policy.uses_per_period - rate.period_spent)} left in this one)"
            parts.append(text + ".")
        if rate is not None:  # when the rate limits allow the next use (RateLimits.sol)
            nxt = next_use_at(policy, rate, now if now is not None else 0)
            if now is not None and nxt <= now:
                parts.append("The rate limits allow a use now.")
            elif nxt:
                parts.append(f"The next use is allowed from {utc_text(nxt, sep=' ', suffix=' UTC')} (unix {nxt}); "
                             "a use before then is refused.")
    eth = lambda v: _units(v, 18, "ETH")  # noqa: E731
    if policy.native_total:
        text = f"Native value: at most {eth(policy.native_per_call)} per call, {eth(policy.native_total)} in total"
        if state is not None:
            text += f" ({eth(max(0, policy.native_total - state.native_spent))} left)"
        if policy.native_period:
            text += f", {eth(policy.native_per_period)} {period_text(policy.native_period, now)}"
        parts.append(text + ".")
    else:
        parts.append("No native value may be sent.")
    for cap in policy.token_caps:
        symbol, decimals = tokens.get(cap.token, (names.get(cap.token, cap.token), None))
        text = f"{symbol} outflow (transfers, approvals, anything that lowers the balance): at most " \
               f"{_units(cap.cap, decimals, symbol)} in total"
        if state is not None and cap.token in getattr(state, "tokens", {}):
            text += f" ({_units(max(0, cap.cap - state.tokens[cap.token].total_spent), decimals, symbol)} left)"
        if cap.period:
            text += f", {_units(cap.per_period, decimals, symbol)} {period_text(cap.period, now)}"
        if decimals is not None:
            text += f"; amounts are in base units ({decimals} decimals: 1 {symbol} = {10**decimals})"
        parts.append(text + ".")
    return " ".join(parts)


def _normalize_maps(names, abis, tokens):
    names = {checked_address(k, "names"): v for k, v in (names or {}).items()}
    abis = {checked_address(k, "abis"): _functions(v) for k, v in (abis or {}).items()}
    tokens = {checked_address(k, "tokens"): (str(v[0]), int(v[1])) for k, v in (tokens or {}).items()}
    return names, abis, tokens


def _build(policy: SessionPolicy, names, abis, tokens, state, now: int | None = None) -> dict[str, _Tool]:
    if not isinstance(policy, SessionPolicy):
        raise InvalidInputError("policy", policy, "a SessionPolicy")
    names, abis, tokens = _normalize_maps(names, abis, tokens)
    capped = {c.token for c in policy.token_caps}
    limits = _limits(policy, tokens, names, state, now)
    native_ok = policy.native_per_call > 0 and policy.native_total > 0
    out: dict[str, _Tool] = {}

    def label(target: str) -> str:
        if target in names:
            return names[target]
        if target in tokens:
            return tokens[target][0]
        return "contract_" + target[2:8].lower()

    def who(target: str) -> str:
        return f"{label(target)} ({target})"

    def add(tool: _Tool | None) -> None:
        if tool is not None:
            out.setdefault(tool.name, tool)

    def function_tool(target: str, fn: dict[str, Any]) -> _Tool | None:
        payable = fn.get("stateMutability") == "payable" and native_ok
        sig = _signature(fn)
        desc = f"Call {sig} on {who(target)} from the smart account."
        if target in capped and _selector(fn) in _ERC20_OUTFLOW:
            desc += " The amount counts against the token cap in full."
        constraints, aliases, text, possible = _rule_constraints(policy, target, _selector(fn), fn, names, tokens)
        if not possible:
            return None  # the rules of its only permission exclude every call: nothing to offer
        return _Tool(_tool_name(label(target), fn["name"]), target, "function", fn, _selector(fn), payable,
                     f"{desc}{text} {limits}", constraints, aliases)

    def native_tool(target: str) -> _Tool:
        return _Tool(_tool_name("send_native_to", label(target)), target, "native", None, b"", True,
                     f"Send native currency (ETH, in wei) to {who(target)} with no calldata. {limits}")

    for perm in policy.permissions:
        target = perm.target
        known = abis.get(target) or (ERC20_ABI if target in tokens or target in capped else [])
        if perm.mode is PermissionMode.EXACT:
            fn = next((f for f in known if _selector(f) == perm.selector), None)
            if fn is not None:
                add(function_tool(target, fn))
            else:
                selector = cast(bytes, perm.selector)  # EXACT: Permission.__post_init__ made it bytes
                add(_Tool(_tool_name(label(target), "0x" + selector.hex()), target, "raw_args", None,
                          selector, False,
                          f"Call the function with selector 0x{selector.hex()} on {who(target)}; pass its "
                          f"ABI-encoded arguments. {limits}"))
        elif perm.mode is PermissionMode.ANY_SELECTOR:
            fns = [f for f in abis.get(target, [])
                   if _selector(f) not in MULTICALL_SELECTORS and f.get("stateMutability") not in ("view", "pure")]
            if fns:
                for fn in fns:
                    add(function_tool(target, fn))
            else:
                add(_Tool(_tool_name("call", label(target)), target, "calldata", None, b"", native_ok,
                          f"Call any function (except multicall-style batching) on {who(target)} with raw "
                          f"calldata. {limits}"))
            if native_ok:
                add(native_tool(target))
        elif native_ok:
            add(native_tool(target))
    return out


_ERC20_OUTFLOW = frozenset(_selector(f) for f in ERC20_ABI)


def _rule_constraints(policy: SessionPolicy, target: str, selector: bytes, fn: Mapping[str, Any],
                      names: Mapping[str, str], tokens: Mapping[str, tuple[str, int]]):
    """(schema keywords per argument position, name -> address per argument position, description text, whether
    some call can pass) of the argument rules.

    A rule's index is an ABI head word (``ArgumentRules.sol``), mapped to its argument by
    :func:`smartkeys.argument_rules.parameters_of`. The schema never allows more than the chain: the rules of
    one permission all hold (AND), so bounds on one argument give the tightest minimum and maximum, and a
    recipient list minus its ``!=`` values gives the enum (nothing left: no call can pass). Several
    permissions for the call are alternatives (OR), which one JSON schema cannot state exactly: then the
    description lists them and says the schema is not narrowed (preflight and the contract decide)."""
    perms = [p for p in policy.permissions if p.target == target and p.selector == selector
             and p.mode is PermissionMode.EXACT]
    ruled = [p for p in perms if p.rules]
    if not ruled:
        return {}, {}, "", True
    inputs = fn.get("inputs", [])
    try:
        params: tuple[Parameter, ...] = parameters_of([_abi_type(p) for p in inputs],
                                                      [p.get("name") for p in inputs], path="abi")
    except InvalidInputError:
        params = ()
    symbol, decimals = tokens.get(target, (None, None))

    def shown(rule: ArgumentRule, v: Any) -> str:
        if rule.abi_type == "address":
            return names.get(v, v)
        if symbol is not None and rule.abi_type.startswith("uint"):
            return _units(v, decimals, symbol)
        return str(v.hex() if isinstance(v, bytes) else v)

    def param(rule: ArgumentRule) -> Parameter | None:
        """The argument whose own head word the rule reads (None: a word inside an array or tuple, or past them)."""
        p = parameter_at(params, rule.index)
        return p if p is not None and p.slot == rule.index and p.ruleable else None

    def arg(rule: ArgumentRule) -> str:
        p = parameter_at(params, rule.index)
        if p is None:
            return f"head word {rule.index}"
        return p.name if p.slot == rule.index else f"{p.name} (head word {rule.index}, inside it)"

    texts = []
    for p in ruled:
        parts = []
        for r in p.rules:
            vals = [shown(r, v) for v in r.values]
            parts.append({
                RuleOp.EQ: f"{arg(r)} = {vals[0]}", RuleOp.NE: f"{arg(r)} != {vals[0]}",
                RuleOp.LE: f"{arg(r)} <= {vals[0]}", RuleOp.GE: f"{arg(r)} >= {vals[0]}",
                RuleOp.RANGE: f"{vals[0]} <= {arg(r)} <= {vals[-1]}",
            }.get(r.op, f"{arg(r)} one of [{', '.join(vals)}]"))
        texts.append(" and ".join(parts))
    text = " Allowed only when " + (" OR when ".join(texts)) + " (checked on chain)."
    if len(perms) != 1:
        if len(ruled) != len(perms):
            text = (" One permission allows this call with any arguments; others add the rules: "
                    + " OR ".join(texts) + ".")
        else:
            text += (" The argument schema is not narrowed to these alternatives: a value outside all of them is "
                     "refused on chain.")
        return {}, {}, text, True
    # One permission: intersect its rules per argument (all must hold).
    enums: dict[int, list[str]] = {}
    excluded: dict[int, set[str]] = {}
    bounds: dict[int, list[Any]] = {}
    by_pos: dict[int, Parameter] = {}
    for r in perms[0].rules:
        prm = param(r)
        if prm is None:
            continue  # a word the schema cannot name: the description says it, the chain checks it
        pos = prm.position
        by_pos[pos] = prm
        if r.abi_type == "address":
            if r.op in (RuleOp.ONE_OF, RuleOp.EQ):
                prev = enums.get(pos)
                enums[pos] = list(r.values) if prev is None else [v for v in prev if v in r.values]
            elif r.op is RuleOp.NE:
                excluded.setdefault(pos, set()).add(r.values[0])
        elif r.abi_type.startswith("uint") and r.op in (RuleOp.LE, RuleOp.GE, RuleOp.RANGE, RuleOp.EQ):
            lo, hi = bounds.setdefault(pos, [None, None])
            new_lo = r.values[0] if r.op in (RuleOp.GE, RuleOp.RANGE, RuleOp.EQ) else None
            new_hi = r.values[-1] if r.op in (RuleOp.LE, RuleOp.RANGE, RuleOp.EQ) else None
            bounds[pos] = [lo if new_lo is None else new_lo if lo is None else max(lo, new_lo),
                           hi if new_hi is None else new_hi if hi is None else min(hi, new_hi)]
        elif r.abi_type.startswith("uint") and r.op is RuleOp.NE:
            excluded.setdefault(pos, set()).add(r.values[0])
    constraints: dict[int, dict[str, Any]] = {}
    aliases: dict[int, dict[str, str]] = {}
    possible = True
    for pos, values in enums.items():
        values = [v for v in values if v not in excluded.get(pos, ())]
        possible = possible and bool(values)
        table = {names.get(v, v): v for v in values}
        constraints[pos] = {"enum": list(table)}
        aliases[pos] = table
    for pos, (lo, hi) in bounds.items():
        ne = excluded.get(pos, set())
        while lo is not None and lo in ne:  # an excluded bound moves inwards (exact for whole numbers)
            lo += 1
        while hi is not None and hi in ne:
            hi -= 1
        top = 2 ** (8 * abi_kind(by_pos[pos].abi_type)[1]) - 1  # the uintN's own range: 0 .. top
        if (lo if lo is not None else 0) > (hi if hi is not None else top):
            possible = False
        c = constraints.setdefault(pos, {})
        if lo is not None:
            c["minimum"] = lo
        if hi is not None:
            c["maximum"] = hi
        rule = next(r for r in perms[0].rules if param(r) == by_pos[pos])
        human = [f"at least {shown(rule, lo)}" if lo is not None else "",
                 f"at most {shown(rule, hi)}" if hi is not None else ""]
        c["description"] = " and ".join(h for h in human if h)
    if not possible:
        text += " No call can pass these rules together (an empty recipient list or range)."
    return constraints, aliases, text, possible


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------


def tool_definitions(
    policy: SessionPolicy,
    *,
    names: Mapping[str, str] | None = None,
    abis: Mapping[str, Any] | None = None,
    tokens: Mapping[str, tuple[str, int]] | None = None,
    state: Any = None,
    format: str = "openai",
    now: int | None = None,
) -> list[dict[str, Any]]:
    """One tool per permitted (contract, function) of ``policy``, in ``format`` ``"openai"`` or ``"anthropic"``.

    ``names`` maps addresses to short names (``{"0xA0b8...": "usdc"}``), ``abis`` addresses to ABIs,
    ``tokens`` addresses to ``(symbol, decimals)`` (limits are then shown in human units). ``state``
    (a :class:`~smartkeys.preflight.SessionState`) adds what is left of each budget and of the uses.
    Periodic caps are described exactly as the contract applies them: calendar windows aligned on
    1970-01-01 UTC (a day resets at 00:00 UTC), never as rolling windows; ``now`` (unix seconds, e.g. the
    latest block's timestamp) adds the next reset time.
    """
    if format not in ("openai", "anthropic"):
        raise InvalidInputError("format", format, "'openai' or 'anthropic'")
    tools = _build(policy, names, abis, tokens, state, now)
    out = []
    for tool in tools.values():
        schema = tool.schema(policy.native_per_call)
        if format == "openai":
            out.append({"type": "function",
                        "function": {"name": tool.name, "description": tool.description, "parameters": schema}})
        else:
            out.append({"name": tool.name, "description": tool.description, "input_schema": schema})
    return out


def call_from_tool(
    tool_name: str,
    arguments: Mapping[str, Any] | str,
    policy: SessionPolicy,
    *,
    names: Mapping[str, str] | None = None,
    abis: Mapping[str, Any] | None = None,
    tokens: Mapping[str, tuple[str, int]] | None = None,
) -> Call:
    """The :class:`Call` a model's tool call stands for (same ``names``/``abis``/``tokens`` as the definitions).

    ``arguments`` is the dict (or the JSON text the model produced). Every argument is checked against the
    tool's schema; :class:`InvalidInputError` names the bad one (``arguments.amount``). The call is only
    translated here: run :func:`smartkeys.preflight.preflight` on it before signing.
    """
    tools = _build(policy, names, abis, tokens, None)
    tool = tools.get(tool_name)
    if tool is None:
        import difflib

        close = difflib.get_close_matches(str(tool_name), list(tools), n=3)
        raise InvalidInputError("tool_name", tool_name, "one of the session's tools",
                                f"did you mean {', '.join(close)}?" if close else f"use one of {', '.join(tools)}")
    if isinstance(arguments, str):
        from smartkeys.safe_files import FileInputError, parse_json

        try:  # a model's output is hostile input: bounded nesting, no NaN, no duplicate keys
            arguments = parse_json(arguments or "{}", path="<tool call>", kind="arguments", max_depth=16)
        except FileInputError as exc:
            raise InvalidInputError("arguments", arguments, f"a JSON object, but {exc.problem}",
                                    "send the arguments as plain JSON") from None
    if not isinstance(arguments, Mapping):
        raise InvalidInputError("arguments", arguments, "a JSON object")
    schema = tool.schema(policy.native_per_call)
    unknown = sorted(set(arguments) - set(schema["properties"]))
    if unknown:
        raise InvalidInputError(f"arguments.{unknown[0]}", arguments[unknown[0]],
                                f"only the arguments {', '.join(schema['properties']) or '(none)'}",
                                f"remove {unknown[0]!r}")
    for req in schema["required"]:
        if req not in arguments:
            raise InvalidInputError(f"arguments.{req}", None, "a value", f"add the required argument {req!r}")
    value = 0
    if "value" in arguments:
        value = _coerce("value", {"type": "uint256"}, arguments["value"])
    if tool.kind == "native":
        return Call(tool.target, value, b"")
    if tool.kind == "calldata":
        data = _coerce("data", {"type": "bytes"}, arguments["data"])
        if len(data) < 4:
            raise InvalidInputError("arguments.data", arguments["data"], "at least a 4-byte selector")
        if data[:4] in MULTICALL_SELECTORS:
            raise InvalidInputError("arguments.data", "0x" + data[:4].hex(), "a non-multicall function",
                                    "call the inner functions one by one")
        return Call(tool.target, value, data)
    if tool.kind == "raw_args":
        return Call(tool.target, 0, tool.selector + _coerce("args", {"type": "bytes"}, arguments["args"]))
    inputs: Sequence[Mapping[str, Any]] = tool.function.get("inputs", [])  # type: ignore[union-attr]
    def given(i: int, p: Mapping[str, Any]) -> Any:
        raw = arguments[p.get("name") or f"arg{i}"]
        table = tool.aliases.get(i)
        if table is not None:  # a recipient list: the model names one of its entries
            if raw not in table:
                raise InvalidInputError(f"arguments.{p.get('name') or f'arg{i}'}", raw,
                                        f"one of {', '.join(table)}", "pick a recipient from the list")
            return table[raw]
        return raw

    values = [_coerce(p.get("name") or f"arg{i}", p, given(i, p)) for i, p in enumerate(inputs)]
    data = tool.selector + abi_encode([_abi_type(p) for p in inputs], values)
    return Call(tool.target, value, data)
