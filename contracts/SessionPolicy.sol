// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ArgumentRules} from "./ArgumentRules.sol";

/// @title SessionPolicy
/// @notice Decoder for the packed session policy that an owner grants and an agent presents with every use.
/// @dev Overview
/// The policy lives in calldata, never in storage: the account stores only `keccak256(policy)` (as the session
/// id) plus spend counters. Granting logs the full policy (so anyone can rebuild it from logs) and every use
/// sends it again, which is far cheaper than reading it back from storage.
///
/// Encoding, version 3 (all integers big-endian, no padding):
///
/// | offset        | size | field            | meaning                                                     |
/// |---------------|------|------------------|-------------------------------------------------------------|
/// | 0             | 1    | version          | 0x03                                                        |
/// | 1             | 20   | key              | session signer address                                      |
/// | 21            | 6    | validAfter       | uint48, exclusive (as EntryPoint v0.8)                      |
/// | 27            | 6    | validUntil       | uint48, inclusive                                           |
/// | 33            | 4    | maxUses          | uint32, 0 = unlimited                                       |
/// | 37            | 12   | nativePerCall    | uint96, cap on the value of each call                       |
/// | 49            | 12   | nativeTotal      | uint96, cumulative cap on call values                       |
/// | 61            | 4    | nativePeriod     | uint32 seconds, 0 = no periodic native allowance            |
/// | 65            | 12   | nativePerPeriod  | uint96, cap on call values within one period                |
/// | 77            | 12   | gasBudget        | uint96 wei, cumulative cap on what user ops may cost        |
/// | 89            | 4    | salt             | uint32, lets an owner grant otherwise identical policies    |
/// | 93            | 1    | flags            | bit 0 UNCAPPED_ASSETS, 1 STANDING_ALLOWANCES, 2 RATE_LIMIT |
/// | 94            | 1    | n                | number of permissions, 1..32                                |
/// | 95 + 27i      | 20   | target           | permission i: contract that may be called                   |
/// |               | 4    | selector         | function selector (0 when mode is ANY or EMPTY)             |
/// |               | 1    | mode             | 0 = exact selector, 1 = any selector, 2 = empty calldata    |
/// |               | 2    | rules            | offset of its argument-rule group in the policy, 0 = none   |
/// | T = 95 + 27n  | 1    | m                | number of ERC-20 caps, 0..16                                |
/// | T + 1 + 52j   | 20   | token            | cap j: ERC-20 token                                         |
/// |               | 14   | cap              | uint112, cumulative cap                                     |
/// |               | 4    | period           | uint32 seconds, 0 = no periodic allowance                   |
/// |               | 14   | perPeriod        | uint112, cap within one period                              |
/// | P = T+1+52m   | 1    | k                | number of allowed paymasters, 0..8                          |
/// | P + 1 + 20h   | 20   | paymaster        | paymaster h                                                 |
///
/// | L = P+1+20k   | 4    | minInterval      | RATE_LIMIT only: uint32 seconds between uses, 0 = none       |
/// |               | 4    | usesPerPeriod    | RATE_LIMIT only: uint32, at most this many uses per period   |
/// |               | 4    | usePeriod        | RATE_LIMIT only: uint32 seconds, 0 = no per-period limit     |
/// | R = L (+12)   |      | rule groups      | one per permission whose `rules` is non-zero, in permission |
/// |               |      |                  | order, each starting exactly at that offset (`ArgumentRules`)|
///
/// The total length must be exactly R plus the sizes of the rule groups (none: exactly R). Only EXACT permissions
/// may carry rules. Periods are fixed windows: `block.timestamp / period`.
///
/// Flags. ALLOW_UNCAPPED_ASSETS (bit 0) is the owner's explicit, named choice to let the key reach assets that the
/// policy does not cap (a token without a token cap, an NFT collection). Without it the account refuses such a
/// grant (default deny). ALLOW_STANDING_ALLOWANCES (bit 1) is the owner's explicit choice to let the key call
/// contracts the account has already approved to spend a capped token (a router, a Permit2-like forwarder):
/// what they pull during a use is measured and charged, but what such a contract lets others pull later is not.
/// Without it the account refuses such a call (StandingAllowance). Unknown flag bits are refused so that a later
/// layout cannot be misread.
library SessionPolicy {
    uint8 internal constant VERSION = 3;
    uint256 internal constant HEADER = 95;
    uint256 internal constant PERMISSION_SIZE = 27;
    uint256 internal constant TOKEN_CAP_SIZE = 52;
    uint256 internal constant PAYMASTER_SIZE = 20;
    uint256 internal constant MAX_PERMISSIONS = 32;
    uint256 internal constant MAX_TOKEN_CAPS = 16;
    uint256 internal constant MAX_PAYMASTERS = 8;

    uint8 internal constant MODE_EXACT = 0;
    uint8 internal constant MODE_ANY_SELECTOR = 1;
    uint8 internal constant MODE_EMPTY_CALLDATA = 2;

    uint8 internal constant FLAG_ALLOW_UNCAPPED_ASSETS = 1;
    uint8 internal constant FLAG_ALLOW_STANDING_ALLOWANCES = 2;
    uint8 internal constant FLAG_RATE_LIMIT = 4;
    uint8 internal constant KNOWN_FLAGS = FLAG_ALLOW_UNCAPPED_ASSETS | FLAG_ALLOW_STANDING_ALLOWANCES | FLAG_RATE_LIMIT;
    uint256 internal constant RATE_LIMIT_SIZE = 12;

    /// @dev The policy bytes do not follow the layout above; `offset` is where decoding failed.
    error PolicyMalformed(uint256 offset);
    /// @dev The first byte names a layout this contract does not know.
    error PolicyVersionUnsupported(uint8 version);

    /// @dev The 32 bytes of `p` at offset `o`, read without a bounds check.
    /// Every reader below assumes a well-formed policy: one that passed `checkLayout`, or one whose hash is a
    /// granted (hence checked) session. Reads past the end of calldata give zeros, never memory or a revert,
    /// so a reader used on an unchecked policy only yields values that the liveness check then rejects.
    function word(bytes calldata p, uint256 o) internal pure returns (uint256 w) {
        assembly ("memory-safe") {
            w := calldataload(add(p.offset, o))
        }
    }

    function key(bytes calldata p) internal pure returns (address) {
        return address(uint160(word(p, 1) >> 96));
    }

    function validAfter(bytes calldata p) internal pure returns (uint48) {
        return uint48(word(p, 21) >> 208);
    }

    function validUntil(bytes calldata p) internal pure returns (uint48) {
        return uint48(word(p, 27) >> 208);
    }

    function maxUses(bytes calldata p) internal pure returns (uint32) {
        return uint32(word(p, 33) >> 224);
    }

    function nativePerCall(bytes calldata p) internal pure returns (uint256) {
        return word(p, 37) >> 160;
    }

    function nativeTotal(bytes calldata p) internal pure returns (uint256) {
        return word(p, 49) >> 160;
    }

    function nativePeriod(bytes calldata p) internal pure returns (uint32) {
        return uint32(word(p, 61) >> 224);
    }

    function nativePerPeriod(bytes calldata p) internal pure returns (uint256) {
        return word(p, 65) >> 160;
    }

    function gasBudget(bytes calldata p) internal pure returns (uint256) {
        return word(p, 77) >> 160;
    }

    function flags(bytes calldata p) internal pure returns (uint8) {
        return uint8(word(p, 93) >> 248);
    }

    function permissionCount(bytes calldata p) internal pure returns (uint256) {
        return word(p, 94) >> 248;
    }

    /// @dev Permission i as (target, selector, mode, rules offset): one 32-byte read holds all 27 bytes.
    function permission(bytes calldata p, uint256 i)
        internal
        pure
        returns (address target, bytes4 selector, uint8 mode, uint256 rules)
    {
        uint256 w = word(p, HEADER + i * PERMISSION_SIZE);
        target = address(uint160(w >> 96));
        selector = bytes4(bytes32(w << 160));
        mode = uint8(w >> 56);
        rules = uint16(w >> 40);
    }

    /// @dev Offset of the token-cap count byte.
    function tokensOffset(bytes calldata p) internal pure returns (uint256) {
        return HEADER + permissionCount(p) * PERMISSION_SIZE;
    }

    function tokenCount(bytes calldata p, uint256 t) internal pure returns (uint256) {
        return word(p, t) >> 248;
    }

    /// @dev Token cap j, given the token-cap count offset `t`.
    function tokenCap(bytes calldata p, uint256 t, uint256 j)
        internal
        pure
        returns (address token, uint256 cap, uint32 period, uint256 perPeriod)
    {
        uint256 o = t + 1 + j * TOKEN_CAP_SIZE;
        token = address(uint160(word(p, o) >> 96));
        cap = word(p, o + 20) >> 144;
        period = uint32(word(p, o + 34) >> 224);
        perPeriod = word(p, o + 38) >> 144;
    }

    /// @dev Token address only (cheaper than the full cap when scanning).
    function tokenAt(bytes calldata p, uint256 t, uint256 j) internal pure returns (address) {
        return address(uint160(word(p, t + 1 + j * TOKEN_CAP_SIZE) >> 96));
    }

    /// @dev Offset of the paymaster count byte, given the token-cap count offset `t`.
    function paymastersOffset(bytes calldata p, uint256 t) internal pure returns (uint256) {
        return t + 1 + tokenCount(p, t) * TOKEN_CAP_SIZE;
    }

    /// @dev True if `paymaster` is in the policy's paymaster list.
    function allowsPaymaster(bytes calldata p, address paymaster) internal pure returns (bool) {
        uint256 o = paymastersOffset(p, tokensOffset(p));
        uint256 k = word(p, o) >> 248;
        for (uint256 h; h < k; ++h) {
            if (address(uint160(word(p, o + 1 + h * PAYMASTER_SIZE) >> 96)) == paymaster) return true;
        }
        return false;
    }

    /// @dev The rate limit (RATE_LIMIT flag set), given the token-cap count offset `t`.
    function rateLimit(bytes calldata p, uint256 t)
        internal
        pure
        returns (uint32 minInterval, uint32 usesPerPeriod, uint32 usePeriod)
    {
        uint256 o = paymastersOffset(p, t);
        uint256 w = word(p, o + 1 + (word(p, o) >> 248) * PAYMASTER_SIZE);
        minInterval = uint32(w >> 224);
        usesPerPeriod = uint32(w >> 192);
        usePeriod = uint32(w >> 160);
    }

    /// @dev Reverts unless the layout is well formed: known version, counts within bounds, exact length.
    /// Semantic checks (window, duplicates, forbidden targets) are the account's job at grant time.
    function checkLayout(bytes calldata p) internal pure {
        if (p.length < HEADER) revert PolicyMalformed(p.length);
        if (uint8(p[0]) != VERSION) revert PolicyVersionUnsupported(uint8(p[0]));
        if (flags(p) & ~KNOWN_FLAGS != 0) revert PolicyMalformed(93);
        uint256 n = permissionCount(p);
        if (n > MAX_PERMISSIONS) revert PolicyMalformed(94);
        uint256 t = HEADER + n * PERMISSION_SIZE;
        if (p.length <= t) revert PolicyMalformed(t);
        uint256 m = uint8(p[t]);
        if (m > MAX_TOKEN_CAPS) revert PolicyMalformed(t);
        uint256 o = t + 1 + m * TOKEN_CAP_SIZE;
        if (p.length <= o) revert PolicyMalformed(o);
        uint256 k = uint8(p[o]);
        if (k > MAX_PAYMASTERS) revert PolicyMalformed(o);
        uint256 r = o + 1 + k * PAYMASTER_SIZE;
        if (flags(p) & FLAG_RATE_LIMIT != 0) r += RATE_LIMIT_SIZE;
        if (p.length < r) revert PolicyMalformed(p.length);
        // Rule groups: in permission order, each exactly where its permission points, nothing after the last.
        for (uint256 i; i < n; ++i) {
            uint256 w = word(p, HEADER + i * PERMISSION_SIZE);
            uint256 g = uint16(w >> 40);
            if (g == 0) continue;
            if (g != r || uint8(w >> 56) != MODE_EXACT) revert PolicyMalformed(HEADER + i * PERMISSION_SIZE + 25);
            r = ArgumentRules.groupEnd(p, g);
        }
        if (p.length != r) revert PolicyMalformed(p.length);
    }
}
