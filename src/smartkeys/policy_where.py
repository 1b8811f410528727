"""The ``where`` table of a policy file's allow entry: argument rules in human terms.

::

    [address_book]
    treasury = "0x…"

    [[allow]]
    contract = "USDC"
    functions = ["transfer(address,uint256)"]
    where = { to = ["treasury", "0x…"], amount = "<= 50 USDC" }

Keys name the function's arguments: the names of the well-known ERC-20 functions (``to``, ``amount``,
``spender``, ``from``), names written in the signature (``"pay(address payee,uint256 sum)"``), or ``argN``
(0-based position). Values: a list (one of, at most 32: allowed recipients), ``"<= X"``, ``">= X"``,
``"== X"``, ``"!= X"``, ``"X .. Y"`` (inclusive range), or a bare value (equal). Addresses may be names of
the address book, ``contracts`` or ``tokens``; an amount argument of a token's own function is written in
that token's units (``"50 USDC"``). Errors name the field path, the value and the fix.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from smartkeys.argument_rules import MAX_VALUES, ArgumentRule, RuleOp, abi_kind
from smartkeys.errors import InvalidInputError

__all__ = ["WELL_KNOWN_ARGUMENTS", "argument_names", "compile_where"]

#: Argument names of the functions whose signatures carry none (ERC-20).
WELL_KNOWN_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "transfer(address,uint256)": ("to", "amount"),
    "approve(address,uint256)": ("spender", "amount"),
    "increaseAllowance(address,uint256)": ("spender", "amount"),
    "decreaseAllowance(address,uint256)": ("spender", "amount"),
    "transferFrom(address,address,uint256)": ("from", "to", "amount"),
}
_OPS = (("<=", RuleOp.LE), (">=", RuleOp.GE), ("==", RuleOp.EQ), ("!=", RuleOp.NE))
_SIG_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\((.*)\)\s*$")


def argument_names(signature: str, path: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """(canonical signature, ABI types, argument names) of ``"f(address to,uint256 amount)"`` or ``"f(address,uint256)"``."""
    m = _SIG_RE.match(signature) if isinstance(signature, str) else None
    if not m:
        raise InvalidInputError(path, signature, "a function signature like 'transfer(address,uint256)'",
                                "write the function with its argument types")
    parts = [p.strip() for p in m.group(2).split(",")] if m.group(2).strip() else []
    types, names = [], []
    for i, part in enumerate(parts):
        words = part.split()
        types.append(words[0])
        names.append(words[-1] if len(words) > 1 else f"arg{i}")
    canonical = f"{m.group(1)}({','.join(types)})"
    known = WELL_KNOWN_ARGUMENTS.get(canonical)
    if known and all(n.startswith("arg") for n in names):
        names = list(known)
    return canonical, tuple(types), tuple(names)


def _value(raw: Any, abi_type: str, path: str, resolve_address: Callable[[Any, str], str],
           amount: Callable[[Any, str], int] | None) -> Any:
    if abi_type == "address":
        return resolve_address(raw.strip() if isinstance(raw, str) else raw, path)
    if abi_type == "bool":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
            return raw.strip().lower() == "true"
        raise InvalidInputError(path, raw, "true or false", "write true or false")
    if abi_type.startswith("bytes"):
        return raw.strip() if isinstance(raw, str) else raw
    if isinstance(raw, str):
        text = raw.strip()
        if amount is not None and not re.fullmatch(r"-?\d+", text):
            return amount(text, path)
        if re.fullmatch(r"-?\d+", text):
            return int(text)
        raise InvalidInputError(path, raw, f"a whole number ({abi_type})",
                                "write base units, or an amount of the token being called like '50 USDC'")
    return raw


def compile_where(
    where: Mapping[str, Any],
    signature: str,
    path: str,
    resolve_address: Callable[[Any, str], str],
    amount: Callable[[Any, str], int] | None = None,
) -> tuple[ArgumentRule, ...]:
    """The :class:`ArgumentRule` s of a ``where`` table for ``signature`` (``path`` names the table in errors).

    ``resolve_address(value, path)`` turns a name or literal into a checksummed address; ``amount(text, path)``
    parses ``"50 USDC"`` for the uint arguments of a token's own functions (None elsewhere).
    """
    if not isinstance(where, Mapping) or not where:
        raise InvalidInputError(path, where, "a table of argument rules", 'write where = { to = ["treasury"] }')
    _, types, names = argument_names(signature, path)
    rules = []
    for name, raw in where.items():
        fpath = f"{path}.{name}"
        if name not in names:
            raise InvalidInputError(fpath, name, f"an argument of {signature}: {', '.join(names) or 'none'}",
                                    "name the argument as listed, or write argN (0-based)")
        index = names.index(name)
        abi_type = types[index]
        try:
            abi_kind(abi_type)
        except InvalidInputError:
            raise InvalidInputError(fpath, abi_type, "a static argument (address, bool, uintN, intN, bytesN)",
                                    "rules cannot look inside dynamic arguments (bytes, string, arrays)") from None
        if isinstance(raw, (list, tuple)):
            if not 1 <= len(raw) <= MAX_VALUES:
                raise InvalidInputError(fpath, len(raw), f"1 to {MAX_VALUES} values", "shorten the list")
            values = tuple(_value(v, abi_type, f"{fpath}[{i}]", resolve_address, amount) for i, v in enumerate(raw))
            rules.append(ArgumentRule(index, RuleOp.ONE_OF, abi_type, values))
            continue
        op, text = RuleOp.EQ, raw
        if isinstance(raw, str):
            stripped = raw.strip()
            for token, rule_op in _OPS:
                if stripped.startswith(token):
                    op, text = rule_op, stripped[len(token):].strip()
                    break
            else:
                if ".." in stripped:
                    lo, hi = (part.strip() for part in stripped.split("..", 1))
                    values = (_value(lo, abi_type, fpath, resolve_address, amount),
                              _value(hi, abi_type, fpath, resolve_address, amount))
                    try:
                        rules.append(ArgumentRule(index, RuleOp.RANGE, abi_type, values))
                    except InvalidInputError as e:
                        raise InvalidInputError(fpath, raw, e.expected, e.hint) from None
                    continue
        value = _value(text, abi_type, fpath, resolve_address, amount)
        try:
            rules.append(ArgumentRule(index, op, abi_type, (value,)))
        except InvalidInputError as e:
            raise InvalidInputError(fpath, raw, e.expected, e.hint) from None
    return tuple(rules)
