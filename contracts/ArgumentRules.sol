// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title ArgumentRules
/// @notice Rules on a call's static ABI arguments, per permission: equal, not equal, <=, >=, range, one-of.
/// @dev Overview
/// A permission of mode EXACT may carry a rule group (see `SessionPolicy`: the permission's `rules` field is the
/// group's offset in the policy, 0 for none). All rules of a group must hold (AND); several permissions for the
/// same (target, selector) are alternatives (OR): the call is allowed if any one of them holds whole.
/// Rules run at execution, before any call, on both session paths; validation never reads them.
///
/// Encoding (inside the policy bytes, big-endian):
///
/// | size   | field  | meaning                                                                        |
/// |--------|--------|--------------------------------------------------------------------------------|
/// | 1      | c      | number of rules in the group, 1..16                                            |
/// | then c times:                                                                                     |
/// | 1      | index  | argument position: the word at calldata[4 + 32 index : 36 + 32 index]          |
/// | 1      | op     | 0 EQ, 1 NE, 2 LE, 3 GE, 4 RANGE (lo, hi; inclusive), 5 ONE_OF (count, values)  |
/// | 1      | type   | kind << 5 | (width - 1); kind 0 unsigned (uintN, address, bool), 1 signed (intN), |
/// |        |        | 2 fixed bytes (bytesN); width = the ABI type's size in bytes, 1..32            |
/// | (1)    | count  | ONE_OF only: number of values, 1..32                                           |
/// | width  | value  | once (EQ, NE, LE, GE), twice (RANGE: lo then hi) or count times (ONE_OF)       |
///
/// A value is stored in `width` bytes: an unsigned value's low bytes, a signed value's low bytes (sign-extended
/// back), a bytesN value's high bytes. An argument word that is not the canonical ABI encoding of its type
/// (dirty high bits of an address, a badly extended int, non-zero bytesN padding), or that the calldata is too
/// short to hold, fails every rule: a token that truncates arguments could otherwise be steered past a rule.
/// LE, GE and RANGE compare as signed integers for kind 1 and as unsigned 256-bit words otherwise.
library ArgumentRules {
    uint8 internal constant EQ = 0;
    uint8 internal constant NE = 1;
    uint8 internal constant LE = 2;
    uint8 internal constant GE = 3;
    uint8 internal constant RANGE = 4;
    uint8 internal constant ONE_OF = 5;

    uint8 internal constant KIND_UNSIGNED = 0;
    uint8 internal constant KIND_SIGNED = 1;
    uint8 internal constant KIND_BYTES = 2;

    uint256 internal constant MAX_RULES = 16;
    uint256 internal constant MAX_VALUES = 32;

    /// @dev A call's argument `argIndex` broke rule `op` (see the encoding) of every permission that names the call;
    /// `value` is the argument word as sent (0 if the calldata was too short to hold it).
    error ArgumentRuleViolated(address target, bytes4 selector, uint256 argIndex, uint8 op, bytes32 value);
    /// @dev Grant refused: the rule at `offset` of the policy is malformed (unknown op or kind, bad width, empty or
    /// oversized set, inverted range, too many rules).
    error InvalidArgumentRule(uint256 offset);

    function _word(bytes calldata p, uint256 o) private pure returns (uint256 w) {
        assembly ("memory-safe") {
            w := calldataload(add(p.offset, o))
        }
    }

    /// @dev The value of `width` bytes at `o`, as the full ABI word of its kind.
    function _value(bytes calldata p, uint256 o, uint256 kind, uint256 width) private pure returns (uint256 v) {
        uint256 shift = 256 - 8 * width;
        v = _word(p, o) >> shift;
        if (kind == KIND_SIGNED) {
            assembly ("memory-safe") {
                v := signextend(sub(width, 1), v)
            }
        } else if (kind == KIND_BYTES) {
            v <<= shift;
        }
    }

    /// @dev True if `a` is the canonical ABI word of a value of this kind and width.
    function _canonical(uint256 a, uint256 kind, uint256 width) private pure returns (bool ok) {
        if (width == 32) return true;
        if (kind == KIND_UNSIGNED) return a >> (8 * width) == 0;
        if (kind == KIND_BYTES) return a << (8 * width) == 0;
        assembly ("memory-safe") {
            ok := eq(signextend(sub(width, 1), a), a)
        }
    }

    function _le(uint256 a, uint256 b, bool signed) private pure returns (bool r) {
        assembly ("memory-safe") {
            switch signed
            case 0 { r := iszero(gt(a, b)) }
            default { r := iszero(sgt(a, b)) }
        }
    }

    /// @dev Size in bytes of the values of a rule with this op (ONE_OF: `count` values after the count byte).
    function _valuesSize(uint256 op, uint256 width, uint256 count) private pure returns (uint256) {
        if (op == ONE_OF) return 1 + count * width;
        if (op == RANGE) return 2 * width;
        return width;
    }

    /// @dev Checks the rule group at `g` of a well-formed policy against call `data`. Returns 0 if every rule holds,
    /// else the offset of the first rule that fails (never 0: groups lie after the header) and the argument word.
    function check(bytes calldata p, uint256 g, bytes calldata data)
        internal
        pure
        returns (uint256 failedAt, bytes32 argument)
    {
        uint256 c = _word(p, g) >> 248;
        uint256 o = g + 1;
        for (uint256 r; r < c; ++r) {
            uint256 head = _word(p, o) >> 232; // index | op | type
            uint256 index = head >> 16;
            uint256 op = (head >> 8) & 0xff;
            uint256 kind = (head & 0xff) >> 5;
            uint256 width = (head & 31) + 1;
            uint256 v = o + 3; // first value (ONE_OF: the count byte)
            uint256 end = 4 + 32 * index + 32;
            uint256 a;
            bool ok;
            if (data.length >= end) {
                a = uint256(bytes32(data[end - 32:end]));
                if (_canonical(a, kind, width)) {
                    bool signed = kind == KIND_SIGNED;
                    if (op == EQ) {
                        ok = a == _value(p, v, kind, width);
                    } else if (op == NE) {
                        ok = a != _value(p, v, kind, width);
                    } else if (op == LE) {
                        ok = _le(a, _value(p, v, kind, width), signed);
                    } else if (op == GE) {
                        ok = _le(_value(p, v, kind, width), a, signed);
                    } else if (op == RANGE) {
                        ok = _le(_value(p, v, kind, width), a, signed)
                            && _le(a, _value(p, v + width, kind, width), signed);
                    } else {
                        uint256 n = _word(p, v) >> 248;
                        uint256 x = v + 1;
                        // A linear scan: at most 32 reads of one word each, cheaper than sorting rules for a
                        // binary search would save on sets this small.
                        for (uint256 k; k < n; ++k) {
                            if (a == _value(p, x, kind, width)) {
                                ok = true;
                                break;
                            }
                            x += width;
                        }
                    }
                }
            }
            if (!ok) return (o, bytes32(a));
            o = v + _valuesSize(op, width, op == ONE_OF ? _word(p, v) >> 248 : 0);
        }
        return (0, 0);
    }

    /// @dev Reverts with `ArgumentRuleViolated` for the rule at `o`.
    function revertViolation(bytes calldata p, uint256 o, address target, bytes4 selector, bytes32 argument)
        internal
        pure
    {
        uint256 head = _word(p, o) >> 232;
        revert ArgumentRuleViolated(target, selector, head >> 16, uint8(head >> 8), argument);
    }

    /// @dev Validates the rule group at `g` (layout and meaning) and returns the offset just past it.
    /// Reverts `InvalidArgumentRule(offset)` on the first bad rule; reads past `p.length` are refused.
    function groupEnd(bytes calldata p, uint256 g) internal pure returns (uint256 o) {
        if (g >= p.length) revert InvalidArgumentRule(g);
        uint256 c = uint8(p[g]);
        if (c == 0 || c > MAX_RULES) revert InvalidArgumentRule(g);
        o = g + 1;
        for (uint256 r; r < c; ++r) {
            if (o + 3 > p.length) revert InvalidArgumentRule(o);
            uint256 op = uint8(p[o + 1]);
            uint256 kind = uint8(p[o + 2]) >> 5;
            uint256 width = (uint8(p[o + 2]) & 31) + 1;
            if (op > ONE_OF || kind > KIND_BYTES) revert InvalidArgumentRule(o);
            uint256 v = o + 3;
            uint256 count;
            if (op == ONE_OF) {
                if (v >= p.length) revert InvalidArgumentRule(o);
                count = uint8(p[v]);
                if (count == 0 || count > MAX_VALUES) revert InvalidArgumentRule(o);
            }
            uint256 next = v + _valuesSize(op, width, count);
            if (next > p.length) revert InvalidArgumentRule(o);
            if (op == RANGE && !_le(_value(p, v, kind, width), _value(p, v + width, kind, width), kind == KIND_SIGNED)) {
                revert InvalidArgumentRule(o);
            }
            o = next;
        }
    }
}
