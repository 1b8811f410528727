"""The ``where`` table of a policy file's allow entry: argument rules in human terms.

::

    [address_book]
    treasury = "0x…"

    [[allow]]
    contract = "USDC"
    functions = ["transfer(address,uint256)"]
    where = { to = ["treasury", "0x…"], amount = "<= 50 USDC" }

Keys name the function's arguments: the names of the well-known ERC-20 functions (``to``, ``amount``,
``spender``, ``from``), names written in the signature (``"pay(address payee,uint256 sum)"``,
``"pay(uint256[2] xs,address to)"``), or ``argN`` (0-based place in the signature's list). Only elementary
static arguments (address, bool, uintN, intN, bytesN) can carry a rule; the rule reads the argument's ABI
head word (after a ``uint256[2]`` the next argument is word 2, see
:func:`smartkeys.argument_rules.signature_parameters`). Values: a list (one of, at most 32: allowed recipients), ``"<= X"``, ``">= X"``,
``"== X"``, ``"!= X"``, ``"X .. Y"`` (inclusive range), or a bare value (equal). Addresses may be names of
the address book, ``contracts`` or ``tokens``; an amount argument of a token's own function is written in
that token's units (``"50 USDC"``). Errors name the field path, the value and the fix.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from smartkeys.argument_rules import MAX_VALUES, WELL_KNOWN_ARGUMENTS, ArgumentRule, RuleOp, signature_parameters
from smartkeys.errors import InvalidInputError

__all__ = ["WELL_KNOWN_ARGUMENTS", "argument_names", "compile_where"]

_OPS = (("<=", RuleOp.LE), (">=", RuleOp.GE), ("==", RuleOp.EQ), ("!=", RuleOp.NE))


def argument_names(signature: str, path: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """(canonical signature, ABI types, argument names) of ``"f(address to,uint256 amount)"`` or ``"f(address,uint256)"``.

    Names are in signature order; a rule's index is a head word, not this order: use
    :func:`smartkeys.argument_rules.signature_parameters` to go from one to the other."""
    canonical, params = signature_parameters(signature, path)
    return canonical, tuple(p.abi_type for p in params), tuple(p.name for p in params)


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
    _, params = signature_parameters(signature, path)
    by_name = {p.name: p for p in params}
    rules = []
    for name, raw in where.items():
        fpath = f"{path}.{name}"
        param = by_name.get(name)
        if param is None:
            raise InvalidInputError(fpath, name, f"an argument of {signature}: "
                                    f"{', '.join(by_name) or 'none'}",
                                    "name the argument as listed, or write argN (0-based)")
        abi_type, index = param.abi_type, param.slot
        if not param.ruleable:
            raise InvalidInputError(fpath, abi_type, "an elementary static argument (address, bool, uintN, intN, "
                                    "bytesN)", f"rules cannot look inside arrays, tuples or dynamic arguments "
                                    f"({name} is {abi_type}): rule another argument, or drop this one from where")
        if index > 255:
            raise InvalidInputError(fpath, index, "an argument within the first 256 ABI head words",
                                    "rules reach head words 0..255 only: rule an earlier argument")
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
