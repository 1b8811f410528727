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
    /// Written in assembly by hand (no library does this). It runs inlined in `executeAsSession`'s deep stack,
    /// where the earlier version spent ~1,000 gas per rule mostly moving values around; the two commonest rules
    /// (ONE_OF on an address, LE on a uint256) take fast paths with constant widths that keep few values live.
    /// The argument is reduced once to the form a value field holds (low bytes, or high bytes for bytesN) so
    /// that EQ, NE and ONE_OF compare raw fields; LE, GE and RANGE compare full words (signed for kind 1).
    function check(bytes calldata p, uint256 g, bytes calldata data)
        internal
        pure
        returns (uint256 failedAt, bytes32 argument)
    {
        assembly ("memory-safe") {
            // True if one of the fields of `width` bytes in [x, last) equals `s`: a linear scan over at most 32
            // fields (addresses take the fast path in `rule`).
            function oneOf(x, last, width, s) -> found {
                let shift := sub(256, shl(3, width))
                for {} lt(x, last) { x := add(x, width) } {
                    if eq(shr(shift, calldataload(x)), s) {
                        found := 1
                        break
                    }
                }
            }
            // Whether word `a` satisfies LE, GE or RANGE (`op`) with bounds `lo`, `hi` (full words; signed if `kind` 1).
            function ordered(op, kind, a, lo, hi) -> ok {
                switch kind
                case 1 {
                    switch op
                    case 2 { ok := iszero(sgt(a, lo)) }
                    case 3 { ok := iszero(slt(a, lo)) }
                    default { ok := iszero(or(slt(a, lo), sgt(a, hi))) }
                }
                default {
                    switch op
                    case 2 { ok := iszero(gt(a, lo)) }
                    case 3 { ok := iszero(lt(a, lo)) }
                    default { ok := iszero(or(lt(a, lo), gt(a, hi))) }
                }
            }
            // The rule at absolute calldata position `r` against the argument words at `args` (`n` bytes): whether
            // it holds, the argument word (0 if the calldata is too short to hold it) and where the next rule starts.
            function rule(r, args, n) -> ok, a, next {
                let head := shr(232, calldataload(r)) // index | op | type
                let at := shl(5, shr(16, head)) // the argument word is args[at : at + 32]
                let present := lt(at, n)
                if present { a := calldataload(add(args, at)) }
                // Fast paths, with constant widths, for the two commonest rules. A non-canonical word (dirty high
                // bits) equals no 20-byte value, so ONE_OF on addresses needs no separate canonical check.
                switch and(head, 0xffff)
                case 0x0513 { // ONE_OF, address (kind 0, width 20)
                    let count := shr(248, calldataload(add(r, 3)))
                    let x := add(r, 4)
                    next := add(x, mul(count, 20))
                    if present {
                        // two values per turn (half the loop overhead); an odd count checks its first value alone
                        if and(count, 1) {
                            ok := eq(shr(96, calldataload(x)), a)
                            x := add(x, 20)
                        }
                        for {} lt(x, next) { x := add(x, 40) } {
                            if or(eq(shr(96, calldataload(x)), a), eq(shr(96, calldataload(add(x, 20))), a)) {
                                ok := 1
                                break
                            }
                        }
                    }
                    leave
                }
                case 0x021f { // LE, uint256
                    next := add(r, 35)
                    ok := and(present, iszero(gt(a, calldataload(add(r, 3)))))
                    leave
                }
                let op := and(shr(8, head), 0xff)
                let width := add(and(head, 31), 1)
                let shift := sub(256, shl(3, width))
                let v := add(r, 3) // first value (ONE_OF: the count byte)
                next := add(v, width)
                if eq(op, 5) { next := add(add(v, 1), mul(shr(248, calldataload(v)), width)) }
                if eq(op, 4) { next := add(next, width) }
                if present {
                    // `s`: the argument as a value field holds it; `canonical`: a is the ABI word of its type.
                    // Shifts by 256 give 0, so width 32 needs no case of its own.
                    let kind := shr(5, and(head, 0xff))
                    let s := a
                    let canonical
                    switch kind
                    case 0 { canonical := iszero(shr(sub(256, shift), a)) }
                    case 1 {
                        canonical := eq(signextend(sub(width, 1), a), a)
                        s := shr(shift, shl(shift, a))
                    }
                    default {
                        canonical := iszero(shl(sub(256, shift), a))
                        s := shr(shift, a)
                    }
                    if canonical {
                        switch op
                        case 5 { ok := oneOf(add(v, 1), next, width, s) }
                        case 0 { ok := eq(s, shr(shift, calldataload(v))) }
                        case 1 { ok := iszero(eq(s, shr(shift, calldataload(v)))) }
                        default {
                            let lo := shr(shift, calldataload(v))
                            let hi := shr(shift, calldataload(add(v, width)))
                            switch kind
                            case 1 {
                                lo := signextend(sub(width, 1), lo)
                                hi := signextend(sub(width, 1), hi)
                            }
                            case 2 {
                                lo := shl(shift, lo)
                                hi := shl(shift, hi)
                            }
                            ok := ordered(op, kind, a, lo, hi)
                        }
                    }
                }
            }
            // Arguments start after the selector; a word is held only if it lies wholly in the calldata.
            let n := 0
            if gt(data.length, 35) { n := sub(data.length, 35) }
            let r := add(p.offset, g)
            for { let c := shr(248, calldataload(r)) r := add(r, 1) } c { c := sub(c, 1) } {
                let ok, a, next := rule(r, add(data.offset, 4), n)
                if iszero(ok) {
                    failedAt := sub(r, p.offset)
                    argument := a
                    break
                }
                r := next
            }
        }
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
