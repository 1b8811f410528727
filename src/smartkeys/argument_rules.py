"""Argument rules of a permission: exactly what ``contracts/ArgumentRules.sol`` encodes and enforces.

A permission of mode EXACT may carry rules on its call's static ABI arguments (``address``, ``uintN``,
``intN``, ``bool``, ``bytesN``), by position. All rules of one permission must hold (AND); several
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
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from eth_utils import is_address, to_checksum_address

from smartkeys.errors import InvalidInputError

__all__ = ["MAX_RULES", "MAX_VALUES", "ArgumentRule", "RuleOp", "abi_kind", "first_failure"]

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
    """Rule ``op`` on argument ``index`` (0-based position) of ABI type ``abi_type``.

    ``values``: one value for EQ/NE/LE/GE, ``(lo, hi)`` for RANGE, 1..32 values for ONE_OF; in on-chain
    units (base units, checksummed addresses, bytes). Raises :class:`InvalidInputError` naming the field.
    """

    index: int
    op: RuleOp
    abi_type: str
    values: tuple[Any, ...]

    def __post_init__(self) -> None:
        if isinstance(self.index, bool) or not isinstance(self.index, int) or not 0 <= self.index <= 255:
            raise InvalidInputError("rule.index", self.index, "an argument position from 0 to 255",
                                    "count the function's arguments from 0")
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
