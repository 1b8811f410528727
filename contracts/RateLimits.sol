// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title RateLimits
/// @notice How often a session may be used: a minimum interval between uses, and at most N uses per period.
/// @dev Overview
/// A policy with the RATE_LIMIT flag carries `minInterval | usesPerPeriod | usePeriod` (see `SessionPolicy`).
/// The state is one ledger word of the session, under the account's own address (which can never be a capped
/// token): `lastUse` (bits 0-111, a timestamp; 0 = never used) | uses in the period (112-223) | period index + 1
/// (224-255), so `sessionLedger(id, account)` reports it. Periods are fixed windows `block.timestamp / usePeriod`,
/// as for the caps. Checked and charged at execution, on both session paths, before any call runs; a use that
/// fails later reverts whole and charges nothing.
library RateLimits {
    uint256 private constant MASK112 = (1 << 112) - 1;
    uint256 private constant PERIOD_SHIFT = 112;
    uint256 private constant INDEX_SHIFT = 224;

    /// @dev The session was last used at `lastUse`; the next use is allowed at `lastUse + minInterval`.
    error UseTooSoon(uint256 lastUse, uint32 minInterval, uint256 timestamp);
    /// @dev The session was used `used` times in the current period of `period` seconds; at most `limit`.
    error UsesPerPeriodReached(uint32 limit, uint32 period, uint256 used);

    /// @dev Checks one more use against the limits and returns the updated ledger word.
    function charge(uint256 word, uint32 minInterval, uint32 limit, uint32 period) internal view returns (uint256) {
        uint256 last = word & MASK112;
        if (minInterval != 0 && last != 0 && block.timestamp < last + minInterval) {
            revert UseTooSoon(last, minInterval, block.timestamp);
        }
        word = (word & ~MASK112) | block.timestamp;
        if (period != 0) {
            uint256 index = block.timestamp / period + 1;
            if (word >> INDEX_SHIFT != index) word = (word & MASK112) | (index << INDEX_SHIFT);
            uint256 used = (word >> PERIOD_SHIFT) & MASK112;
            if (used >= limit) revert UsesPerPeriodReached(limit, period, used);
            word += 1 << PERIOD_SHIFT;
        }
        return word;
    }
}
