"""Argument rules of a permission: exactly what ``contracts/ArgumentRules.sol`` encodes and enforces.

A permission of mode EXACT may carry rules on its call's static ABI arguments (``address``, ``uintN``,
``intN``, ``bool``, ``bytesN``), by ABI head word (below). All rules of one permission must hold (AND); several
permissions for the same (target, selector) are alternatives (OR). Ops: ``EQ``, ``NE``, ``LE``, ``GE``,
``RANGE`` (inclusive) and ``ONE_OF`` (1..32 values, e.g. allowed recipients).

>>> r = ArgumentRule(0, RuleOp.ONE_OF, "address", ("0x" + "11" * 20, "0x" + "22" * 20))
>>> r.encode().hex()[:10]   # index 0, op 5, type (kind 0, width 20 -> 0x13), count 2
'0005130211'
>>> data = bytes(4) + bytes(12) + bytes.fromhex("22" * 20) + (5).to_bytes(32, "big")
>>> r.holds(data)
True
>>> ArgumentRule(1, RuleOp.LE, "uint256", (4,)).holds(data)
False

The contract reports a refusal as ``ArgumentRuleViolated(target, selector, argIndex, op, value)``;
:func:`first_failure` returns the same (rule, argument word) pair offline.

A rule's ``index`` is the ABI **head word** the contract reads (``calldata[4 + 32 index : 36 + 32 index]``),
not the parameter's place in the signature: a static array ``T[k]`` or a static tuple fills several head
words, a dynamic parameter one (its offset). :func:`signature_parameters` maps a signature to its
parameters with their head words; everything that turns an argument name into a rule index, or back, uses it.

>>> [(p.name, p.abi_type, p.slot) for p in signature_parameters("pay(uint256[2] xs, address to, uint256 amount)")[1]]
[('xs', 'uint256[2]', 0), ('to', 'address', 2), ('amount', 'uint256', 3)]
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from eth_abi.exceptions import ABITypeError, ParseError
from eth_abi.grammar import TupleType, normalize, parse
from eth_abi.registry import registry
from eth_utils import is_address, to_checksum_address

from smartkeys.errors import InvalidInputError, _split_tuple

__all__ = ["MAX_RULES", "MAX_VALUES", "WELL_KNOWN_ARGUMENTS", "ArgumentRule", "Parameter", "RuleOp", "abi_kind",
           "first_failure", "parameter_at", "parameters_of", "signature_parameters"]

MAX_RULES = 16
MAX_VALUES = 32
KIND_UNSIGNED, KIND_SIGNED, KIND_BYTES = 0, 1, 2
_TYPE_RE = re.compile(r"^(address|bool|uint(\d{1,3})?|int(\d{1,3})?|bytes(\d{1,2}))$")


class RuleOp(IntEnum):
    """A rule's comparison (the ``op`` byte)."""

    EQ = 0
    NE = 1
    LE = 2
    GE = 3
    RANGE = 4
    """Inclusive: ``lo <= argument <= hi``; values ``(lo, hi)``."""
    ONE_OF = 5
    """The argument equals one of 1..32 values."""


def abi_kind(abi_type: str) -> tuple[int, int]:
    """``(kind, width in bytes)`` of a static ABI type; raises :class:`InvalidInputError` for others.

    >>> abi_kind("address"), abi_kind("int24"), abi_kind("bytes4"), abi_kind("uint")
    ((0, 20), (1, 3), (2, 4), (0, 32))
    """
    m = _TYPE_RE.match(abi_type) if isinstance(abi_type, str) else None
    fix = "use address, bool, uintN, intN (N a multiple of 8, 8..256) or bytesN (1..32)"
    if not m:
        raise InvalidInputError("rule.type", abi_type, "a static ABI type", fix)
    if abi_type == "address":
        return KIND_UNSIGNED, 20
    if abi_type == "bool":
        return KIND_UNSIGNED, 1
    if abi_type.startswith("bytes"):
        n = int(m.group(4))
        if not 1 <= n <= 32:
            raise InvalidInputError("rule.type", abi_type, "a static ABI type", fix)
        return KIND_BYTES, n
    bits = int(m.group(2) or m.group(3) or 256)
    if bits % 8 or not 8 <= bits <= 256:
        raise InvalidInputError("rule.type", abi_type, "a static ABI type", fix)
    return (KIND_SIGNED if abi_type.startswith("int") else KIND_UNSIGNED), bits // 8


#: Argument names of the functions whose signatures carry none (ERC-20).
WELL_KNOWN_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "transfer(address,uint256)": ("to", "amount"),
    "approve(address,uint256)": ("spender", "amount"),
    "increaseAllowance(address,uint256)": ("spender", "amount"),
    "decreaseAllowance(address,uint256)": ("spender", "amount"),
    "transferFrom(address,address,uint256)": ("from", "to", "amount"),
}
_NAME_RE = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
_FUNCTION_RE = re.compile(r"^\s*([A-Za-z_$][A-Za-z0-9_$]*)\s*\((.*)\)\s*$", re.S)
_LOCATIONS = frozenset({"memory", "calldata", "storage"})


@dataclass(frozen=True)
class Parameter:
    """One parameter of a function: its ``position`` in the signature's list (0-based), its ``name`` (as
    written, an ERC-20 name of :data:`WELL_KNOWN_ARGUMENTS`, else ``argN`` with N the position), its canonical
    ABI type, and the head words it fills: ``slot`` (the first; what a rule's ``index`` means) and ``slots``
    (a static ``T[k]`` fills k times T's words, a static tuple the sum of its fields', anything else 1).
    Source: Solidity ABI specification, "Formal Specification of the Encoding" (head/tail layout)."""

    position: int
    name: str
    abi_type: str
    slot: int
    slots: int

    @property
    def ruleable(self) -> bool:
        """True for an elementary static type (address, bool, uintN, intN, bytesN): the only ones a rule reads."""
        try:
            abi_kind(self.abi_type)
        except InvalidInputError:
            return False
        return True


def _head_words(t: Any) -> int:
    """Head words of a parsed eth-abi type: 1 if dynamic (the offset), else its whole static encoding."""
    if t.is_dynamic:
        return 1
    if t.is_array:
        return int(t.arrlist[-1][0]) * _head_words(t.item_type)
    if isinstance(t, TupleType):
        return sum(_head_words(c) for c in t.components)
    return 1


def parameters_of(types: Sequence[str], names: Sequence[str | None] = (), *,
                  path: str = "signature") -> tuple[Parameter, ...]:
    """The :class:`Parameter` s of a list of ABI types (``names[i]`` names type i; missing or empty: ``argN``).

    Types are parsed and normalized by eth-abi's grammar (``uint`` -> ``uint256``); a type eth-abi cannot
    encode raises :class:`InvalidInputError` naming ``path``."""
    out: list[Parameter] = []
    slot = 0
    for i, raw in enumerate(types):
        try:
            t = parse(normalize(str(raw).strip()))
            t.validate()
            canonical = t.to_type_str()
            if not registry.has_encoder(canonical):
                raise ABITypeError(canonical)
        except (ParseError, ABITypeError):
            raise InvalidInputError(f"{path}.arg{i}", raw, "a Solidity ABI type (e.g. address, uint256, "
                                    "uint256[2], (address,uint256))", "check the argument's type") from None
        name = names[i] if i < len(names) and names[i] else f"arg{i}"
        words = _head_words(t)
        out.append(Parameter(i, str(name), canonical, slot, words))
        slot += words
    return tuple(out)


def signature_parameters(signature: str, path: str = "signature") -> tuple[str, tuple[Parameter, ...]]:
    """``(canonical signature, parameters)`` of ``"f(uint256[2] xs, address to)"`` or ``"f(uint256[2],address)"``.

    Parameter names are optional (``memory``/``calldata`` are skipped); unnamed parameters of the ERC-20
    functions get their usual names (``to``, ``amount``, ...), others ``argN``. The canonical signature
    (types only, normalized: the one whose keccak gives the selector) is what ``selector_of`` takes.
    Raises :class:`InvalidInputError` naming ``path`` for text that is not a signature."""
    m = _FUNCTION_RE.match(signature) if isinstance(signature, str) else None
    body = m.group(2).strip() if m else ""
    if not m or body.count("(") != body.count(")"):
        raise InvalidInputError(path, signature, "a function signature like 'transfer(address,uint256)'",
                                "write the function with its argument types")
    types: list[str] = []
    names: list[str | None] = []
    # the commas outside parentheses, as the error decoder splits a tuple type (errors._split_tuple); by hand
    # because eth-abi's grammar parses types, not the parameter names of a human-written signature
    for i, part in enumerate(p.strip() for p in _split_tuple(body)):
        if part.startswith("("):  # a tuple type: up to its last parenthesis, then its [k] dimensions
            cut = part.rfind(")") + 1
            dims = re.match(r"\s*((?:\[\d*\])*)", part[cut:])
            typ = part[:cut].replace(" ", "") + dims.group(1) if dims else part[:cut]
            rest = part[cut + (dims.end() if dims else 0):]
        else:
            typ, rest = (part.split(None, 1) + [""])[:2] if part else ("", "")
        words = [typ, *(w for w in rest.split() if w not in _LOCATIONS)]
        if not words or len(words) > 2 or (len(words) == 2 and not _NAME_RE.match(words[1])):
            raise InvalidInputError(f"{path}.arg{i}", part, "a type and an optional name, like 'address to'",
                                    "write each argument as its type, then its name")
        types.append(words[0])
        names.append(words[1] if len(words) == 2 else None)
    params = parameters_of(types, names, path=path)
    canonical = f"{m.group(1)}({','.join(p.abi_type for p in params)})"
    known = WELL_KNOWN_ARGUMENTS.get(canonical)
    if known and not any(names):
        params = tuple(Parameter(p.position, n, p.abi_type, p.slot, p.slots) for p, n in zip(params, known, strict=True))
    return canonical, params


def parameter_at(params: Sequence[Parameter], slot: int) -> Parameter | None:
    """The parameter whose head words hold word ``slot`` (None past the head)."""
    for p in params:
        if p.slot <= slot < p.slot + p.slots:
            return p
    return None


def _word(abi_type: str, kind: int, width: int, value: Any, field: str) -> int:
    """The canonical ABI word (as an unsigned 256-bit int) of ``value``."""
    if abi_type == "address":
        if isinstance(value, bytes) and len(value) == 20:
            value = "0x" + value.hex()
        if not isinstance(value, str) or not is_address(value):
            raise InvalidInputError(field, value, "a 20-byte hex address", "check the address (0x + 40 hex digits)")
        return int(value, 16)
    if abi_type == "bool":
        if value not in (True, False, 0, 1):
            raise InvalidInputError(field, value, "true or false", "use a bool")
        return int(value)
    if kind == KIND_BYTES:
        if isinstance(value, str) and value.startswith("0x"):
            try:
                value = bytes.fromhex(value[2:])
            except ValueError:
                pass
        if not isinstance(value, bytes) or len(value) != width:
            raise InvalidInputError(field, value, f"exactly {width} bytes", f"give 0x + {2 * width} hex digits")
        return int.from_bytes(value.ljust(32, b"\x00"), "big")
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(field, value, f"an integer ({abi_type})", "give a whole number in base units")
    bits = 8 * width
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if kind == KIND_SIGNED else (0, 2**bits - 1)
    if not lo <= value <= hi:
        raise InvalidInputError(field, value, f"an integer from {lo} to {hi} ({abi_type})", "use a value the type can hold")
    return value % 2**256


def _signed(word: int) -> int:
    return word - 2**256 if word >> 255 else word


@dataclass(frozen=True)
class ArgumentRule:
    """Rule ``op`` on ABI head word ``index`` (0-based; :attr:`Parameter.slot`) of ABI type ``abi_type``.

    ``values``: one value for EQ/NE/LE/GE, ``(lo, hi)`` for RANGE, 1..32 values for ONE_OF; in on-chain
    units (base units, checksummed addresses, bytes). Raises :class:`InvalidInputError` naming the field.
    """

    index: int
    op: RuleOp
    abi_type: str
    values: tuple[Any, ...]

    def __post_init__(self) -> None:
        if isinstance(self.index, bool) or not isinstance(self.index, int) or not 0 <= self.index <= 255:
            raise InvalidInputError("rule.index", self.index, "an ABI head word from 0 to 255",
                                    "use the argument's head word (signature_parameters gives it)")
        try:
            object.__setattr__(self, "op", RuleOp(self.op))
        except ValueError:
            raise InvalidInputError("rule.op", self.op, "one of EQ, NE, LE, GE, RANGE, ONE_OF", "pick a known op") from None
        kind, width = abi_kind(self.abi_type)
        object.__setattr__(self, "_kind", (kind, width))
        values = tuple(self.values) if isinstance(self.values, (tuple, list)) else (self.values,)
        want = {RuleOp.RANGE: (2, 2), RuleOp.ONE_OF: (1, MAX_VALUES)}.get(self.op, (1, 1))
        if not want[0] <= len(values) <= want[1]:
            raise InvalidInputError("rule.values", len(values), f"{want[0]}..{want[1]} values for {self.op.name}",
                                    "list the values (RANGE: lo and hi; ONE_OF: at most 32)")
        words = tuple(_word(self.abi_type, kind, width, v, f"rule.values[{i}]") for i, v in enumerate(values))
        if self.abi_type == "address":
            values = tuple(to_checksum_address("0x" + w.to_bytes(20, "big").hex()) for w in words)
        if self.op is RuleOp.RANGE and not self._le(words[0], words[1]):
            raise InvalidInputError("rule.values", values, "lo <= hi", "swap the bounds")
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "_words", words)

    def _le(self, a: int, b: int) -> bool:
        if self._kind[0] == KIND_SIGNED:  # type: ignore[attr-defined]
            return _signed(a) <= _signed(b)
        return a <= b

    @property
    def words(self) -> tuple[int, ...]:
        """The values as canonical ABI words (unsigned 256-bit ints)."""
        return self._words  # type: ignore[attr-defined]

    def encode(self) -> bytes:
        """``index | op | kind << 5 | (width - 1) | [count] | values`` (see ``ArgumentRules.sol``)."""
        kind, width = self._kind  # type: ignore[attr-defined]
        out = bytearray((self.index, self.op, kind << 5 | (width - 1)))
        if self.op is RuleOp.ONE_OF:
            out.append(len(self.words))
        for w in self.words:
            if kind == KIND_BYTES:
                out += w.to_bytes(32, "big")[:width]
            else:
                out += (w % 2 ** (8 * width)).to_bytes(width, "big")
        return bytes(out)

    @classmethod
    def decode_from(cls, data: bytes, pos: int) -> tuple[ArgumentRule, int]:
        """Parse one rule at ``pos``; returns (rule, position after it)."""
        if pos + 3 > len(data):
            raise InvalidInputError("policy.rules", pos, "a whole rule", "the policy bytes are truncated")
        index, op, t = data[pos], data[pos + 1], data[pos + 2]
        kind, width = t >> 5, (t & 31) + 1
        if kind > KIND_BYTES or op > RuleOp.ONE_OF:
            raise InvalidInputError("policy.rules", f"byte {pos}", "a known rule op and kind", "upgrade smartkeys")
        abi_type = ("uint", "int", "bytes")[kind] + str(8 * width if kind != KIND_BYTES else width)
        pos += 3
        count = {RuleOp.RANGE: 2, RuleOp.ONE_OF: None}.get(RuleOp(op), 1)
        if count is None:
            count = data[pos] if pos < len(data) else 0
            pos += 1
        values: list[Any] = []
        for _ in range(count):
            chunk = data[pos : pos + width]
            if len(chunk) != width:
                raise InvalidInputError("policy.rules", pos, "a whole rule value", "the policy bytes are truncated")
            pos += width
            if kind == KIND_BYTES:
                values.append(chunk)
            elif kind == KIND_SIGNED:
                values.append(int.from_bytes(chunk, "big", signed=True))
            else:
                values.append(int.from_bytes(chunk, "big"))
        if kind == KIND_UNSIGNED and width == 20:
            abi_type = "address"
            values = ["0x" + v.to_bytes(20, "big").hex() for v in values]
        return cls(index, RuleOp(op), abi_type, tuple(values)), pos

    def _canonical(self, a: int) -> bool:
        kind, width = self._kind  # type: ignore[attr-defined]
        if width == 32:
            return True
        if kind == KIND_UNSIGNED:
            return a >> (8 * width) == 0
        if kind == KIND_BYTES:
            return (a << (8 * width)) % 2**256 == 0
        bits = 8 * width
        low = a % 2**bits
        extended = low - 2**bits if low >> (bits - 1) else low
        return extended % 2**256 == a

    def argument(self, data: bytes) -> int | None:
        """The argument word this rule reads from call ``data`` (selector included), or None if too short."""
        end = 4 + 32 * self.index + 32
        if len(data) < end:
            return None
        return int.from_bytes(data[end - 32 : end], "big")

    def holds(self, data: bytes) -> bool:
        """True if the rule holds for call ``data`` (as ``ArgumentRules.check``)."""
        a = self.argument(data)
        if a is None or not self._canonical(a):
            return False
        w = self.words
        op = self.op
        if op is RuleOp.EQ:
            return a == w[0]
        if op is RuleOp.NE:
            return a != w[0]
        if op is RuleOp.LE:
            return self._le(a, w[0])
        if op is RuleOp.GE:
            return self._le(w[0], a)
        if op is RuleOp.RANGE:
            return self._le(w[0], a) and self._le(a, w[1])
        return a in w


def first_failure(rules: tuple[ArgumentRule, ...], data: bytes) -> tuple[ArgumentRule, int] | None:
    """The first rule of a group that fails for ``data`` and the argument word it read (0 if absent)."""
    for rule in rules:
        if not rule.holds(data):
            return rule, rule.argument(data) or 0
    return None
