// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IAccount} from "@account-abstraction/contracts/interfaces/IAccount.sol";
import {PackedUserOperation} from "@account-abstraction/contracts/interfaces/PackedUserOperation.sol";
import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {ERC721Holder} from "@openzeppelin/contracts/token/ERC721/utils/ERC721Holder.sol";
import {ERC1155Holder} from "@openzeppelin/contracts/token/ERC1155/utils/ERC1155Holder.sol";
import {SessionPolicy} from "./SessionPolicy.sol";
import {TokenRules} from "./TokenRules.sol";
import {ArgumentRules} from "./ArgumentRules.sol";
import {RateLimits} from "./RateLimits.sol";

/// @notice ERC-7779 (interoperable delegated accounts): lets a wallet that is about to re-delegate this EOA find
/// its storage and ask it to clean up.
interface IERC7779 {
    /// @notice The ERC-7201 storage bases this account uses.
    function accountStorageBases() external view returns (bytes32[] memory);
    /// @notice Called (by the account itself) before the EOA delegates elsewhere; returns true when done.
    function onRedelegation() external returns (bool);
}

/// @title SmartKeysAccount
/// @notice EIP-7702 delegation target that turns an EOA into an account whose owner (the EOA itself) grants
/// scoped, expiring, revocable session keys to agents.
/// @dev Overview
/// - The owner is `address(this)`: the EOA's own key. It acts by sending a transaction to itself or through
///   ERC-4337 user operations (EntryPoint v0.8 at its canonical address).
/// - A session is a packed policy (see `SessionPolicy`) whose hash is the session id. The account stores one
///   status word per session and one ledger word per capped asset; the policy itself is logged on grant and
///   presented again as calldata with every use.
/// - A session key acts through `executeAsSession`, either as a user operation it signed (validation checks the
///   signature, the session's liveness and its gas budget, and hands the window to the EntryPoint) or as a
///   transaction its own address sends. Both paths run the same scope and budget checks at execution, so a
///   revoke executed earlier in the same bundle stops a later operation.
/// - Validation reads no block data and touches only this account's storage (ERC-7562).
/// - A delegated EOA keeps its storage across re-delegations: everything lives in one ERC-7201 namespace, no
///   constructor or initializer sets state, and `revokeAllSessions` moves an epoch that invalidates every key.
///   ERC-7779's `onRedelegation` does the same for wallets that call it before re-delegating.
/// - Rotation and renewal (`rotateSessionSigner`, `renewSessionPolicy`) grant a successor policy with the old
///   session's status and ledger words copied and revoke the old id in the same transaction; the successor may
///   only lower limits, so nothing is reset or raised, and session use costs exactly what it did.
/// - What a use is charged is at least what left the account: every capped token balance is read before and
///   after each call and the use is charged max(declared amount, observed decrease) per call, never netting an
///   inflow against an outflow (see `TokenRules`). A user operation's maximum cost counts against the gas budget
///   whoever pays it first (the account's deposit, or a paymaster that may charge the account afterwards).
contract SmartKeysAccount is IAccount, IERC1271, IERC7779, ERC721Holder, ERC1155Holder {
    using SessionPolicy for bytes;

    /*//////////////////////////////////////////////////////////////
                                 TYPES
    //////////////////////////////////////////////////////////////*/

    struct Call {
        address target;
        uint256 value;
        bytes data;
    }

    /// @custom:storage-location erc7201:smartkeys.account.sessions
    struct SessionStorage {
        /// Revoke-all counter. A session is live only if it was granted in the current epoch.
        uint32 epoch;
        /// sessionId => status word (layout below).
        mapping(bytes32 => uint256) status;
        /// sessionId => asset (token, or address(0) for periodic native) => ledger word (layout below).
        mapping(bytes32 => mapping(address => uint256)) ledger;
    }

    /*//////////////////////////////////////////////////////////////
                               CONSTANTS
    //////////////////////////////////////////////////////////////*/

    /// @notice The canonical ERC-4337 EntryPoint v0.8.
    address public constant ENTRY_POINT = 0x4337084D9E255Ff0702461CF8895CE9E3b5Ff108;

    /// @dev keccak256(abi.encode(uint256(keccak256("smartkeys.account.sessions")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 private constant SESSION_STORAGE_SLOT = 0x85dece25ab95dba2de628dd50d9c89670ce8c2bc2392e71aa090a7149bc2ae00;

    uint256 private constant SIG_VALIDATION_FAILED = 1;
    /// @dev Most calls one use may make: `SessionUsed` records the call count in one byte.
    uint256 private constant MAX_CALLS = 255;

    // Status word: uses (bits 0-31) | nativeSpent (32-127) | gasSpent (128-223) | epoch + 1 (224-254) | revoked (255).
    // Zero means "never granted"; the epoch field is stored plus one so a granted word is never zero. A revoke sets
    // the top bit and keeps the counters (for the audit), so a session id is granted at most once, ever.
    uint256 private constant USES_MASK = 0xffffffff;
    uint256 private constant NATIVE_SHIFT = 32;
    uint256 private constant GAS_SHIFT = 128;
    uint256 private constant EPOCH_SHIFT = 224;
    uint256 private constant EPOCH_MASK = 0x7fffffff;
    uint256 private constant REVOKED_BIT = 1 << 255;
    /// @dev The epoch field holds epoch + 1 in 31 bits.
    uint32 private constant MAX_EPOCH = 0x7ffffffe;
    uint256 private constant MASK96 = (1 << 96) - 1;

    // Ledger word: totalSpent (bits 0-111) | periodSpent (112-223) | period index + 1 (224-255).
    // The top field is written non-zero at grant so the first use updates a warm non-zero slot.
    uint256 private constant MASK112 = (1 << 112) - 1;
    uint256 private constant PERIOD_SHIFT = 112;
    uint256 private constant INDEX_SHIFT = 224;

    /// @dev Transient reentrancy flag for session execution (a nested use would read stale budgets).
    bytes32 private constant SESSION_LOCK_SLOT = keccak256("smartkeys.account.session-lock");

    /*//////////////////////////////////////////////////////////////
                                 EVENTS
    //////////////////////////////////////////////////////////////*/

    /// @notice A session was granted. `policy` is the full packed policy. A session id is granted at most once.
    event SessionGranted(bytes32 indexed sessionId, address indexed key, uint32 epoch, bytes policy);
    /// @notice A session key used its session.
    /// @param value total native value sent by the calls
    /// @param usage packed: per call `target (20) | selector (4)` (selector 0 for calldata under 4 bytes),
    ///        then per charged token `token (20) | amount (14)`; `callCount` tells where the calls end.
    event SessionUsed(bytes32 indexed sessionId, uint256 value, uint8 callCount, bytes usage);
    /// @notice A session was revoked by the owner.
    event SessionRevoked(bytes32 indexed sessionId);
    /// @notice Every session granted before `newEpoch` was revoked at once.
    event AllSessionsRevoked(uint32 newEpoch);
    /// @notice The owner replaced a live session's key: `nextId` (granted in the same transaction, see its
    /// `SessionGranted`) carries on `previousId`'s counters under `newKey`; `previousId` is dead from this block.
    event SessionRotated(bytes32 indexed previousId, bytes32 indexed nextId, address oldKey, address newKey);
    /// @notice The owner renewed a live session: `nextId` (see its `SessionGranted`) has the window end
    /// `newValidUntil` and limits no higher than before, and carries on `previousId`'s counters.
    event SessionRenewed(bytes32 indexed previousId, bytes32 indexed nextId, uint48 oldValidUntil, uint48 newValidUntil);

    /*//////////////////////////////////////////////////////////////
                                 ERRORS
    //////////////////////////////////////////////////////////////*/

    /// @dev Only the account itself (the EOA owner) or the EntryPoint may call this.
    error Unauthorized(address caller);
    /// @dev A session may only be used by its key (or through a user operation the key signed).
    error NotSessionKey(address caller, address key);
    /// @dev The session was never granted, or was revoked.
    error SessionNotActive(bytes32 sessionId);
    /// @dev The session was granted before the latest revoke-all.
    error SessionEpochRevoked(bytes32 sessionId, uint32 grantedEpoch, uint32 currentEpoch);
    /// @dev Used at or before `validAfter` (the window is exclusive at the start).
    error SessionNotYetValid(uint48 validAfter, uint256 timestamp);
    /// @dev Used after `validUntil` (the window is inclusive at the end).
    error SessionExpired(uint48 validUntil, uint256 timestamp);
    /// @dev The session has been used `maxUses` times.
    error UsageLimitReached(uint32 maxUses);
    /// @dev No permission of the session covers this (target, selector).
    error CallNotAllowed(address target, bytes4 selector);
    /// @dev Calldata of 1-3 bytes has no selector and is never allowed.
    error CalldataTooShort(address target, uint256 length);
    /// @dev Session calls may never reach the account itself, the EntryPoint or the zero address.
    error ForbiddenTarget(address target);
    /// @dev Multicall-style functions hide inner calls from the policy; they cannot be allowlisted.
    error MulticallNotAllowed(address target, bytes4 selector);
    /// @dev One call's value is above the per-call cap.
    error NativeValueAboveCallCap(uint256 value, uint256 cap);
    /// @dev The native spend (already spent + requested) would pass the cumulative cap.
    error NativeSpendCapExceeded(uint256 spent, uint256 requested, uint256 cap);
    /// @dev The native spend within the current period would pass the periodic cap.
    error NativePeriodCapExceeded(uint256 spent, uint256 requested, uint256 cap);
    /// @dev The token outflow (already spent + this use) would pass the cumulative cap.
    error TokenSpendCapExceeded(address token, uint256 spent, uint256 requested, uint256 cap);
    /// @dev The token outflow within the current period would pass the periodic cap.
    error TokenPeriodCapExceeded(address token, uint256 spent, uint256 requested, uint256 cap);
    /// @dev The user operation's maximum gas cost would pass the session's gas budget.
    error GasBudgetExceeded(uint256 spent, uint256 requested, uint256 budget);
    /// @dev A session operation must use the nonce lane (key) equal to the session key's address.
    error SessionNonceLaneMismatch(uint256 expectedLane, uint256 lane);
    /// @dev The user operation names a paymaster the policy does not list.
    error PaymasterNotAllowed(address paymaster);
    /// @dev A user operation's callData must be `executeAsSession(policy, calls)` with a well-formed head.
    error SessionCallDataMalformed();
    /// @dev Grant refused: the session key is the zero address or the account itself.
    error InvalidSessionKey(address key);
    /// @dev Grant refused: validUntil must be after validAfter.
    error InvalidWindow(uint48 validAfter, uint48 validUntil);
    /// @dev Grant refused: the window already ended.
    error WindowAlreadyEnded(uint48 validUntil, uint256 timestamp);
    /// @dev Grant refused: a policy with no permission could do nothing.
    error EmptyScope();
    /// @dev Grant refused: the same permission is listed twice.
    error DuplicatePermission(address target, bytes4 selector, uint8 mode);
    /// @dev Grant refused: an any-selector permission on `target` would allow the call `selector` whatever its
    /// argument rules say (permissions are alternatives), so those rules would be void.
    error RulesBypassed(address target, bytes4 selector);
    /// @dev Grant refused: a permission mode other than exact (0), any (1) or empty-calldata (2), or a selector
    /// given with a mode that ignores it.
    error InvalidPermission(address target, bytes4 selector, uint8 mode);
    /// @dev Grant refused: a token is zero, the account itself, or listed twice.
    error InvalidTokenCap(address token);
    /// @dev Grant refused: a periodic cap must come with a period and vice versa.
    error InvalidPeriod(address asset, uint32 period, uint256 perPeriod);
    /// @dev Grant refused: a paymaster is zero or listed twice.
    error InvalidPaymaster(address paymaster);
    /// @dev A session call tried to start another session use before the first finished.
    error SessionReentered();
    /// @dev Revoke-all cannot move the epoch further.
    error EpochExhausted();
    /// @dev A session use must run at least one call (an empty batch would only burn a use and gas).
    error EmptyBatch();
    /// @dev Grant refused: this session id was granted before (live, revoked or from an older epoch). Every grant
    /// has its own identity so that its counters are never reset and nothing signed for it is valid for another:
    /// change the policy's salt to grant the same powers again.
    error SessionAlreadyGranted(bytes32 sessionId);
    /// @dev This function of a capped token cannot be accounted exactly (see `TokenRules`), so it is refused.
    error TokenFunctionNotAccountable(address token, bytes4 selector);
    /// @dev An ERC-20 function returned `false` (or a non-boolean): the use fails and nothing is charged.
    error TokenCallReturnedFalse(address token, bytes4 selector);
    /// @dev A capped token did not answer `balanceOf(account)`; its outflow cannot be measured.
    error TokenBalanceUnreadable(address token);
    /// @dev Grant refused (default deny): the permission can move an asset the policy does not cap. Cap the token,
    /// or set the policy flag ALLOW_UNCAPPED_ASSETS to say so explicitly.
    error UncappedAsset(address target, bytes4 selector);
    /// @dev `spender` (a session call's target) may already spend `amount` of capped `token` from this account (an
    /// allowance the owner gave it): what it lets anyone pull later escapes every measurement. Refused unless the
    /// policy sets ALLOW_STANDING_ALLOWANCES.
    error StandingAllowance(address token, address spender, uint256 amount);
    /// @dev More calls than `SessionUsed` can record (255).
    error BatchTooLarge(uint256 calls);
    /// @dev Rotate/renew refused: the successor policy would raise the limit `field` (of `asset` for a token cap,
    /// else address(0)) from `current` to `proposed`. A limit of 0 means unlimited for `maxUses`; for
    /// `minInterval` a lower value is the higher rate. Limits may only stay or go down.
    error SuccessorRaisesLimit(string field, address asset, uint256 current, uint256 proposed);
    /// @dev Rotate/renew refused: the limit `field` (of `asset` for a token cap) would go below what was already
    /// spent (`spent`; in the current period for periodic caps). Setting it to `spent` leaves nothing more to spend.
    error SuccessorBelowSpent(string field, address asset, uint256 spent, uint256 proposed);
    /// @dev Rotate/renew refused: `field` must stay as it is (scope, periods, flags, window start; `key` on renew).
    /// For byte ranges (`permissions`, `paymasters`, `argumentRules`) the values are their keccak256 hashes.
    error SuccessorChangesField(string field, uint256 current, uint256 proposed);

    /*//////////////////////////////////////////////////////////////
                               MODIFIERS
    //////////////////////////////////////////////////////////////*/

    modifier onlyOwner() {
        if (msg.sender != address(this) && msg.sender != ENTRY_POINT) revert Unauthorized(msg.sender);
        _;
    }

    /*//////////////////////////////////////////////////////////////
                               RECEIVING
    //////////////////////////////////////////////////////////////*/

    /// @notice Accept plain ETH transfers.
    receive() external payable {}

    /*//////////////////////////////////////////////////////////////
                           OWNER EXECUTION
    //////////////////////////////////////////////////////////////*/

    /// @notice Owner call: one call with value. Reverts bubble up unchanged.
    function execute(address target, uint256 value, bytes calldata data) external payable onlyOwner {
        _call(target, value, data);
    }

    /// @notice Owner batch: calls run in order; the first failure reverts the whole batch with its reason.
    function executeBatch(Call[] calldata calls) external payable onlyOwner {
        for (uint256 i; i < calls.length; ++i) {
            _call(calls[i].target, calls[i].value, calls[i].data);
        }
    }

    /*//////////////////////////////////////////////////////////////
                             ERC-4337
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IAccount
    /// @dev callData starting with `executeAsSession` is a session operation: the signature must come from the
    /// policy's key. Anything else is an owner operation signed by this EOA's key. A wrong signature returns
    /// SIG_VALIDATION_FAILED; a dead session, a foreign paymaster or an exhausted gas budget revert with their
    /// custom error so that a bundler reports why.
    function validateUserOp(PackedUserOperation calldata userOp, bytes32 userOpHash, uint256 missingAccountFunds)
        external
        returns (uint256 validationData)
    {
        if (msg.sender != ENTRY_POINT) revert Unauthorized(msg.sender);
        bytes calldata callData = userOp.callData;
        if (callData.length >= 4 && bytes4(callData[:4]) == this.executeAsSession.selector) {
            validationData = _validateSessionOp(userOp, userOpHash);
        } else if (_recover(userOpHash, userOp.signature) != address(this)) {
            validationData = SIG_VALIDATION_FAILED;
        }
        if (missingAccountFunds != 0) {
            // The EntryPoint checks the deposit itself; a failed transfer surfaces there as AA21.
            (bool ok,) = payable(msg.sender).call{value: missingAccountFunds}("");
            (ok);
        }
    }

    function _validateSessionOp(PackedUserOperation calldata userOp, bytes32 userOpHash)
        private
        returns (uint256 validationData)
    {
        bytes calldata policy = _policyFromCallData(userOp.callData);
        // An empty batch is refused here too, so it cannot spend the gas budget.
        uint256 callCount = _callCountFromCallData(userOp.callData);
        if (callCount == 0) revert EmptyBatch();
        if (callCount > MAX_CALLS) revert BatchTooLarge(callCount);
        // Keep going on a bad signature so gas estimation with a dummy signature measures the real path;
        // the EntryPoint rejects the operation (and undoes every write) when sigFailed is set.
        uint256 sigFailed = _recover(userOpHash, userOp.signature) == policy.key() ? 0 : SIG_VALIDATION_FAILED;

        // A key signs only on its own nonce lane, so it cannot spend the owner's (or another key's) sequence.
        uint256 lane = userOp.nonce >> 64;
        if (lane != uint160(policy.key())) revert SessionNonceLaneMismatch(uint160(policy.key()), lane);

        SessionStorage storage $ = _sessions();
        bytes32 id = keccak256(policy);
        uint256 status = $.status[id];
        _requireLive(id, status, $.epoch);

        // What the account can be made to pay for this operation: EntryPoint v0.8's required prefund, i.e. every
        // gas limit (the paymaster's too) times maxFeePerGas. With a paymaster the EntryPoint takes it from the
        // paymaster's deposit, but a token paymaster charges the account for it afterwards (in postOp, outside
        // any session check), so it counts against the gas budget whoever pays first.
        bytes32 limits = userOp.accountGasLimits;
        uint256 gas = (uint256(limits) >> 128) + uint128(uint256(limits)) + userOp.preVerificationGas;
        bytes calldata pmd = userOp.paymasterAndData;
        if (pmd.length != 0) {
            // The EntryPoint refuses paymasterAndData shorter than 52 bytes (AA93) before calling the account.
            address paymaster = address(bytes20(pmd[:20]));
            if (!policy.allowsPaymaster(paymaster)) revert PaymasterNotAllowed(paymaster);
            gas += uint128(bytes16(pmd[20:36])) + uint128(bytes16(pmd[36:52]));
        }
        uint256 cost = gas * uint128(uint256(userOp.gasFees));
        uint256 spent = (status >> GAS_SHIFT) & MASK96;
        uint256 budget = policy.gasBudget();
        if (cost > budget - spent) revert GasBudgetExceeded(spent, cost, budget);
        // Charged here, where it is checked; `sessionStatus` reports the running total (gasSpent).
        $.status[id] = status + (cost << GAS_SHIFT);
        validationData =
            sigFailed | (uint256(policy.validUntil()) << 160) | (uint256(policy.validAfter()) << 208);
    }

    /*//////////////////////////////////////////////////////////////
                            SESSION USE
    //////////////////////////////////////////////////////////////*/

    /// @notice Run `calls` under the session `policy`. Callable by the policy's key directly, or by the
    /// EntryPoint for a user operation the key signed. Scope, caps, uses and liveness are checked here on
    /// both paths; the window is checked here on the direct path and by the EntryPoint on the other.
    function executeAsSession(bytes calldata policy, Call[] calldata calls) external {
        SessionStorage storage $ = _sessions();
        bytes32 id = keccak256(policy);
        uint256 status = $.status[id];
        _requireLive(id, status, $.epoch);
        bool viaEntryPoint = msg.sender == ENTRY_POINT;
        if (!viaEntryPoint && msg.sender != policy.key()) revert NotSessionKey(msg.sender, policy.key());
        uint256 n = calls.length;
        if (n == 0) revert EmptyBatch();
        if (n > MAX_CALLS) revert BatchTooLarge(n);
        _lockSession();

        if (!viaEntryPoint) {
            uint48 validAfter = policy.validAfter();
            if (block.timestamp <= validAfter) revert SessionNotYetValid(validAfter, block.timestamp);
            uint48 validUntil = policy.validUntil();
            if (block.timestamp > validUntil) revert SessionExpired(validUntil, block.timestamp);
        }

        uint32 maxUses = policy.maxUses();
        if (maxUses != 0) {
            if (status & USES_MASK >= maxUses) revert UsageLimitReached(maxUses);
            status += 1;
        }
        if (policy.flags() & SessionPolicy.FLAG_RATE_LIMIT != 0) _chargeRate(policy, id);

        // 1. Scope (including which functions of a capped token may be called) and native value: all checked
        //    before any call runs. Token amounts are charged as the calls run (2.) and checked after them (3.):
        //    a use over a token cap reverts whole, and checking declared amounts twice cost ~1.1k gas a use.
        uint256 t = policy.tokensOffset();
        uint256 tokenCount = policy.tokenCount(t);
        uint256[] memory charged = new uint256[](tokenCount);
        uint256 value;
        // SessionUsed's data is written in place as the calls are checked and the tokens charged:
        // value | callCount | offset 0x60 | usage length | usage (see the event), one allocation.
        uint256 log = _allocate(128 + n * 24 + tokenCount * 34 + 32);
        uint256 cursor = log + 128;
        for (uint256 i; i < n; ++i) {
            Call calldata c = calls[i];
            address target = c.target;
            bytes4 selector = _checkScope(policy, target, c.data);
            if (tokenCount != 0) {
                uint256 j = _tokenIndex(policy, t, tokenCount, target);
                if (j < tokenCount) {
                    if (c.data.length < 4 || !TokenRules.isAccountable(selector)) {
                        revert TokenFunctionNotAccountable(target, selector);
                    }
                } else if (policy.flags() & SessionPolicy.FLAG_ALLOW_STANDING_ALLOWANCES == 0) {
                    _requireNoStandingAllowance(policy, t, tokenCount, target, true);
                }
            }
            uint256 v = c.value;
            if (v != 0) {
                uint256 perCall = policy.nativePerCall();
                if (v > perCall) revert NativeValueAboveCallCap(v, perCall);
                value += v;
            }
            assembly ("memory-safe") {
                mstore(cursor, or(shl(96, target), shr(160, selector)))
            }
            cursor += 24;
        }
        if (value != 0) status = _chargeNative(policy, id, status, value);
        if (maxUses != 0 || value != 0) $.status[id] = status;

        if (tokenCount == 0) {
            for (uint256 i; i < n; ++i) {
                _sessionCall(calls[i]);
            }
        } else {
            // 2. Run the calls, reading every capped balance before and after each one. Each call is charged, per
            //    token, max(declared amount, observed decrease): an inflow never offsets an outflow, and a
            //    fee-on-transfer token is charged what actually left. (The balance after call i is the balance
            //    before call i+1: nothing runs in between.)
            uint256[] memory balances = _balances(policy, t, tokenCount);
            for (uint256 i; i < n; ++i) {
                Call calldata c = calls[i];
                uint256 declaredIn = _tokenIndex(policy, t, tokenCount, c.target);
                uint256 declared = declaredIn < tokenCount ? TokenRules.declaredAmount(c.data) : 0;
                _sessionCall(c);
                for (uint256 j; j < tokenCount; ++j) {
                    uint256 balance = _balanceOf(policy.tokenAt(t, j));
                    uint256 outflow = balances[j] > balance ? balances[j] - balance : 0;
                    if (j == declaredIn && declared > outflow) outflow = declared;
                    if (outflow != 0) charged[j] = _saturatingAdd(charged[j], outflow);
                    balances[j] = balance;
                }
            }

            // 3. Token caps, against what was charged, where it is checked.
            for (uint256 j; j < tokenCount; ++j) {
                if (charged[j] != 0) {
                    address token = policy.tokenAt(t, j);
                    (, uint256 word) = _checkTokenCap(policy, t, j, id, charged[j]);
                    _sessions().ledger[id][token] = word;
                    uint256 amount = uint112(charged[j]);
                    assembly ("memory-safe") {
                        mstore(cursor, or(shl(96, token), shr(16, amount)))
                        mstore(add(cursor, 32), shl(240, amount))
                    }
                    cursor += 34;
                }
            }
        }
        _emitSessionUsed(id, log, cursor, value, n);
        _unlockSession();
    }

    /// @dev Returns the call's selector (zero for empty calldata) if some permission covers it.
    function _checkScope(bytes calldata policy, address target, bytes calldata data) private view returns (bytes4) {
        if (target == address(this) || target == ENTRY_POINT || target == address(0)) revert ForbiddenTarget(target);
        bool empty = data.length == 0;
        if (!empty && data.length < 4) revert CalldataTooShort(target, data.length);
        bytes4 selector = empty ? bytes4(0) : bytes4(data[:4]);
        uint256 n = policy.permissionCount();
        uint256 failedAt; // the last argument rule that failed, if a permission named the call (see ArgumentRules)
        bytes32 argument;
        for (uint256 i; i < n; ++i) {
            (address allowed, bytes4 allowedSelector, uint8 mode, uint256 rules) = policy.permission(i);
            if (allowed != target) continue;
            if (mode == SessionPolicy.MODE_ANY_SELECTOR) {
                if (empty || !_isMulticall(selector)) return selector;
            } else if (mode == SessionPolicy.MODE_EMPTY_CALLDATA) {
                if (empty) return selector;
            } else if (!empty && allowedSelector == selector) {
                if (rules == 0) return selector;
                (uint256 f, bytes32 a) = ArgumentRules.check(policy, rules, data);
                if (f == 0) return selector;
                (failedAt, argument) = (f, a);
            }
        }
        if (failedAt != 0) ArgumentRules.revertViolation(policy, failedAt, target, selector, argument);
        revert CallNotAllowed(target, selector);
    }

    /// @dev Index of `target` among the policy's capped tokens, or `tokenCount` if it is not one.
    function _tokenIndex(bytes calldata policy, uint256 t, uint256 tokenCount, address target)
        private
        pure
        returns (uint256 j)
    {
        for (; j < tokenCount; ++j) {
            if (policy.tokenAt(t, j) == target) return j;
        }
    }

    /// @dev Reverts with StandingAllowance if `spender` may already spend a capped token of this account. A
    /// `spender` without code cannot be made to act by a session call. `strict` (at use): a capped token that
    /// does not answer `allowance` fails the use; at grant such a token (not deployed yet) is skipped.
    function _requireNoStandingAllowance(
        bytes calldata policy,
        uint256 t,
        uint256 tokenCount,
        address spender,
        bool strict
    ) private view {
        if (spender.code.length == 0) return;
        for (uint256 k; k < tokenCount; ++k) {
            address token = policy.tokenAt(t, k);
            bool ok;
            uint256 amount;
            assembly ("memory-safe") {
                let m := mload(0x40)
                mstore(m, 0xdd62ed3e) // allowance(address,address)
                mstore(add(m, 0x20), address())
                mstore(add(m, 0x40), spender)
                ok := and(gt(returndatasize(), 31), staticcall(gas(), token, add(m, 0x1c), 0x44, 0x00, 0x20))
                amount := mload(0x00)
            }
            if (!ok) {
                if (strict) revert TokenBalanceUnreadable(token);
            } else if (amount != 0) {
                revert StandingAllowance(token, spender, amount);
            }
        }
    }

    /// @dev One session call. Reverts bubble up unchanged; an ERC-20 bool function that did not return `true`
    /// fails the use (`TokenCallReturnedFalse`), whatever the target, so a silent no-op is never charged or
    /// reported as done.
    function _sessionCall(Call calldata c) private {
        address target = c.target;
        bytes calldata data = c.data;
        (bool ok, bytes memory result) = target.call{value: c.value}(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(result, 0x20), mload(result))
            }
        }
        if (data.length >= 4) {
            bytes4 selector = bytes4(data[:4]);
            if (TokenRules.returnsBool(selector) && !TokenRules.isSuccessResult(target, result)) {
                revert TokenCallReturnedFalse(target, selector);
            }
        }
    }

    /// @dev Reserves `size` bytes of memory (past the free pointer, so later allocations keep off it).
    function _allocate(uint256 size) private pure returns (uint256 ptr) {
        assembly ("memory-safe") {
            ptr := mload(0x40)
            mstore(0x40, add(ptr, size))
        }
    }

    /// @dev Emits SessionUsed(id, value, uint8(n), usage) from the buffer at `log` whose usage ends at `end`;
    /// ABI-encoded exactly as `emit` would (zero padding to a whole word).
    function _emitSessionUsed(bytes32 id, uint256 log, uint256 end, uint256 value, uint256 n) private {
        bytes32 topic = SessionUsed.selector;
        assembly ("memory-safe") {
            let len := sub(end, add(log, 128))
            mstore(end, 0)
            mstore(log, value)
            mstore(add(log, 32), and(n, 0xff))
            mstore(add(log, 64), 0x60)
            mstore(add(log, 96), len)
            log2(log, add(128, and(add(len, 31), not(31))), topic, id)
        }
    }

    /// @dev Sums that saturate at 2^256-1: an absurd declared amount must meet the cap check, not an overflow panic.
    function _saturatingAdd(uint256 a, uint256 b) private pure returns (uint256) {
        unchecked {
            uint256 c = a + b;
            return c < a ? type(uint256).max : c;
        }
    }

    function _balances(bytes calldata policy, uint256 t, uint256 tokenCount)
        private
        view
        returns (uint256[] memory balances)
    {
        balances = new uint256[](tokenCount);
        for (uint256 j; j < tokenCount; ++j) {
            balances[j] = _balanceOf(policy.tokenAt(t, j));
        }
    }

    /// @dev `token.balanceOf(this)`; a token that does not answer with a word fails the use.
    function _balanceOf(address token) private view returns (uint256 amount) {
        bool ok;
        assembly ("memory-safe") {
            mstore(0x00, 0x70a08231) // balanceOf(address)
            mstore(0x20, address())
            // Arguments are evaluated right to left: the call runs before returndatasize is read.
            ok := and(gt(returndatasize(), 31), staticcall(gas(), token, 0x1c, 0x24, 0x00, 0x20))
            amount := mload(0x00)
        }
        if (!ok) revert TokenBalanceUnreadable(token);
    }

    function _chargeNative(bytes calldata policy, bytes32 id, uint256 status, uint256 value)
        private
        returns (uint256)
    {
        uint256 spent = (status >> NATIVE_SHIFT) & MASK96;
        uint256 cap = policy.nativeTotal();
        if (value > cap - spent) revert NativeSpendCapExceeded(spent, value, cap);
        uint32 period = policy.nativePeriod();
        if (period != 0) {
            _chargePeriod(id, address(0), period, policy.nativePerPeriod(), value);
        }
        return status + (value << NATIVE_SHIFT);
    }

    /// @dev Reverts if charging `amount` of token cap j would pass its cumulative or periodic cap.
    /// Compared as `amount > cap - spent` (spent never exceeds cap), so huge amounts cannot overflow.
    function _checkTokenCap(bytes calldata policy, uint256 t, uint256 j, bytes32 id, uint256 amount)
        private
        view
        returns (address token, uint256 word)
    {
        uint256 cap;
        uint32 period;
        uint256 perPeriod;
        (token, cap, period, perPeriod) = policy.tokenCap(t, j);
        word = _sessions().ledger[id][token];
        uint256 spent = word & MASK112;
        if (amount > cap - spent) revert TokenSpendCapExceeded(token, spent, amount, cap);
        if (period != 0) {
            word = _rollPeriod(word, period);
            uint256 inPeriod = (word >> PERIOD_SHIFT) & MASK112;
            if (amount > perPeriod - inPeriod) revert TokenPeriodCapExceeded(token, inPeriod, amount, perPeriod);
            word += amount << PERIOD_SHIFT;
        }
        word += amount;
    }

    /// @dev Rate limits (see `RateLimits`): the state is the session's ledger word under the account's own address.
    function _chargeRate(bytes calldata policy, bytes32 id) private {
        (uint32 minInterval, uint32 limit, uint32 period) = policy.rateLimit(policy.tokensOffset());
        mapping(address => uint256) storage ledger = _sessions().ledger[id];
        ledger[address(this)] = RateLimits.charge(ledger[address(this)], minInterval, limit, period);
    }

    /// @dev Periodic native allowance (the cumulative native total lives in the status word).
    function _chargePeriod(bytes32 id, address asset, uint32 period, uint256 perPeriod, uint256 amount) private {
        uint256 word = _rollPeriod(_sessions().ledger[id][asset], period);
        uint256 inPeriod = (word >> PERIOD_SHIFT) & MASK112;
        if (amount > perPeriod - inPeriod) revert NativePeriodCapExceeded(inPeriod, amount, perPeriod);
        _sessions().ledger[id][asset] = word + (amount << PERIOD_SHIFT);
    }

    /// @dev Starts a new period (spent in period = 0) when the fixed window `timestamp / period` moved on.
    function _rollPeriod(uint256 word, uint32 period) private view returns (uint256) {
        uint256 index = block.timestamp / period + 1;
        if (word >> INDEX_SHIFT == index) return word;
        return (word & MASK112) | (index << INDEX_SHIFT);
    }

    /*//////////////////////////////////////////////////////////////
                          SESSION MANAGEMENT
    //////////////////////////////////////////////////////////////*/

    /// @notice Grant the session described by the packed `policy`. Each session id is granted at most once: to grant
    /// the same powers again (after a revoke, or beside a live session), change the policy's salt.
    /// @dev Refuses (default deny) any permission that can move an asset the policy does not cap, unless the
    /// policy sets ALLOW_UNCAPPED_ASSETS; and any function of a capped token that cannot be accounted exactly.
    /// @return sessionId keccak256(policy)
    function grantSession(bytes calldata policy) external onlyOwner returns (bytes32 sessionId) {
        policy.checkLayout();
        address key = policy.key();
        if (key == address(0) || key == address(this)) revert InvalidSessionKey(key);
        uint48 validAfter = policy.validAfter();
        uint48 validUntil = policy.validUntil();
        if (validUntil <= validAfter) revert InvalidWindow(validAfter, validUntil);
        if (validUntil < block.timestamp) revert WindowAlreadyEnded(validUntil, block.timestamp);
        uint256 t = policy.tokensOffset();
        _checkPermissions(policy, t);

        SessionStorage storage $ = _sessions();
        sessionId = keccak256(policy);
        if ($.status[sessionId] != 0) revert SessionAlreadyGranted(sessionId);
        uint32 nativePeriod = policy.nativePeriod();
        _checkPeriod(address(0), nativePeriod, policy.nativePerPeriod());
        if (nativePeriod != 0) $.ledger[sessionId][address(0)] = _freshLedger(nativePeriod);

        _initTokenLedgers(policy, t, sessionId);
        if (policy.flags() & SessionPolicy.FLAG_RATE_LIMIT != 0) {
            (uint32 minInterval, uint32 limit, uint32 period) = policy.rateLimit(t);
            _checkPeriod(address(this), period, limit);
            if (minInterval == 0 && period == 0) revert InvalidPeriod(address(this), 0, 0);
            $.ledger[sessionId][address(this)] = _freshLedger(period);
        }
        _checkPaymasters(policy, policy.paymastersOffset(t));

        uint32 epoch = $.epoch;
        $.status[sessionId] = (uint256(epoch) + 1) << EPOCH_SHIFT;
        emit SessionGranted(sessionId, key, epoch, policy);
    }

    /// @notice Revoke one session at once; its key can no longer act, on any path. Its counters stay readable.
    function revokeSession(bytes32 sessionId) external onlyOwner {
        SessionStorage storage $ = _sessions();
        uint256 status = $.status[sessionId];
        if (status == 0 || status & REVOKED_BIT != 0) revert SessionNotActive(sessionId);
        $.status[sessionId] = status | REVOKED_BIT;
        emit SessionRevoked(sessionId);
    }

    /// @notice Replace the key of the live session `current` (its packed policy): `next` is the same policy with
    /// another key (and any salt), and optionally a new window end and lower limits (the rules of `renewSessionPolicy`).
    /// In one transaction the old session id is revoked (its key is refused from this block, on every path) and
    /// `next` is granted with the old counters: uses, native and gas spent, every token and native ledger (total
    /// and period) and the rate-limit state, so the new key can spend only what was left.
    /// @dev Emits `SessionGranted(nextId, ...)` (so the policy can be rebuilt from logs) and `SessionRotated`.
    /// Refuses a dead session (`SessionNotActive`, `SessionEpochRevoked`), an ended one (`SessionExpired`), the
    /// same key, zero or the account (`InvalidSessionKey`), and any widening (`SuccessorRaisesLimit`,
    /// `SuccessorChangesField`).
    /// @dev Named so that its selector (0xe385bc02) sorts after `execute` and `executeAsSession`: the via-IR
    /// dispatcher compares selectors in order, and each earlier one costs every call ~22 gas.
    /// @return nextId keccak256(next)
    function rotateSessionSigner(bytes calldata current, bytes calldata next) external onlyOwner returns (bytes32 nextId) {
        address oldKey = current.key();
        address newKey = next.key();
        if (newKey == oldKey) revert InvalidSessionKey(newKey);
        bytes32 previousId;
        (previousId, nextId) = _succeed(current, next);
        emit SessionRotated(previousId, nextId, oldKey, newKey);
    }

    /// @notice Renew the live session `current` (its packed policy) as `next`: same key, scope, periods, flags and
    /// window start; `validUntil` may move either way (not into the past); `maxUses`, the native caps, the gas
    /// budget, the token caps and the rate limit may only stay or go down. The counters carry over exactly (as in
    /// `rotateSessionSigner`) and the old session id is revoked in the same transaction.
    /// @dev Emits `SessionGranted(nextId, ...)` and `SessionRenewed`. A raise is refused with
    /// `SuccessorRaisesLimit(field, asset, current, proposed)`, any other change with `SuccessorChangesField`.
    /// @dev Named so that its selector (0xf6beb128) sorts after the hot functions' (see `rotateSessionSigner`).
    /// @return nextId keccak256(next)
    function renewSessionPolicy(bytes calldata current, bytes calldata next) external onlyOwner returns (bytes32 nextId) {
        if (next.key() != current.key()) revert SuccessorChangesField("key", uint160(current.key()), uint160(next.key()));
        bytes32 previousId;
        (previousId, nextId) = _succeed(current, next);
        emit SessionRenewed(previousId, nextId, current.validUntil(), next.validUntil());
    }

    /// @notice Revoke every session granted so far, in one write.
    function revokeAllSessions() external onlyOwner {
        _revokeAll();
    }

    /// @inheritdoc IERC7779
    /// @dev Revokes every session (as `revokeAllSessions`), so that a later delegation back to this code does
    /// not revive keys granted before the EOA delegated elsewhere. Owner only (the EOA itself or its user op).
    function onRedelegation() external onlyOwner returns (bool) {
        _revokeAll();
        return true;
    }

    /// @inheritdoc IERC7779
    function accountStorageBases() external pure returns (bytes32[] memory bases) {
        bases = new bytes32[](1);
        bases[0] = SESSION_STORAGE_SLOT;
    }

    /// @dev Rotation and renewal: checks that `next` widens nothing of the live session `current`, grants it with
    /// `current`'s status word and ledger words (copied: the session ops stay as cheap as before), and revokes
    /// `current`. The successor keeps the old ledgers' meaning because every period length stays the same.
    function _succeed(bytes calldata current, bytes calldata next) private returns (bytes32 previousId, bytes32 nextId) {
        SessionStorage storage $ = _sessions();
        previousId = keccak256(current);
        uint256 status = $.status[previousId];
        uint32 epoch = $.epoch;
        _requireLive(previousId, status, epoch);
        // A live id is a granted (hence well-formed) policy: its readers are safe without checkLayout.
        if (current.validUntil() < block.timestamp) revert SessionExpired(current.validUntil(), block.timestamp);
        next.checkLayout();
        address key = next.key();
        if (key == address(0) || key == address(this)) revert InvalidSessionKey(key);
        uint48 validUntil = next.validUntil();
        if (validUntil <= next.validAfter()) revert InvalidWindow(next.validAfter(), validUntil);
        if (validUntil < block.timestamp) revert WindowAlreadyEnded(validUntil, block.timestamp);
        uint256 t = current.tokensOffset();
        _requireNoWidening(current, next, t);

        nextId = keccak256(next);
        if ($.status[nextId] != 0) revert SessionAlreadyGranted(nextId);
        // Every cap check computes `cap - spent`: a cap lowered below what was spent is refused, not wrapped.
        _notBelow("nativeTotal", address(0), (status >> NATIVE_SHIFT) & MASK96, next.nativeTotal());
        _notBelow("gasBudget", address(0), (status >> GAS_SHIFT) & MASK96, next.gasBudget());
        $.status[nextId] = status; // live in this epoch, same uses / native / gas counters
        $.status[previousId] = status | REVOKED_BIT;
        mapping(address => uint256) storage from = $.ledger[previousId];
        mapping(address => uint256) storage to = $.ledger[nextId];
        uint32 period = current.nativePeriod();
        if (period != 0) {
            uint256 word = from[address(0)];
            _notBelow("nativePerPeriod", address(0), _spentInPeriod(word, period), next.nativePerPeriod());
            to[address(0)] = word;
        }
        uint256 m = current.tokenCount(t);
        for (uint256 j; j < m; ++j) {
            (address token, uint256 cap, uint32 tokenPeriod, uint256 perPeriod) = next.tokenCap(t, j);
            uint256 word = from[token];
            _notBelow("tokenCaps.cap", token, word & MASK112, cap);
            if (tokenPeriod != 0) _notBelow("tokenCaps.perPeriod", token, _spentInPeriod(word, tokenPeriod), perPeriod);
            to[token] = word;
        }
        if (current.flags() & SessionPolicy.FLAG_RATE_LIMIT != 0) to[address(this)] = from[address(this)];
        emit SessionGranted(nextId, key, epoch, next);
    }

    /// @dev Reverts unless every limit of `b` is at most `a`'s and everything else but key, salt and validUntil
    /// is equal. `t` is the token-cap count offset (the same in both once the permission counts match).
    function _requireNoWidening(bytes calldata a, bytes calldata b, uint256 t) private pure {
        _same("validAfter", a.validAfter(), b.validAfter());
        // Uses are counted only under a limit: an unlimited session's count is 0, so it stays unlimited.
        uint256 uses = a.maxUses();
        if (uses == 0) _same("maxUses", 0, b.maxUses());
        else if (b.maxUses() == 0 || b.maxUses() > uses) revert SuccessorRaisesLimit("maxUses", address(0), uses, b.maxUses());
        _notAbove("nativePerCall", address(0), a.nativePerCall(), b.nativePerCall());
        _notAbove("nativeTotal", address(0), a.nativeTotal(), b.nativeTotal());
        _same("nativePeriod", a.nativePeriod(), b.nativePeriod());
        _notAbove("nativePerPeriod", address(0), a.nativePerPeriod(), b.nativePerPeriod());
        _notAbove("gasBudget", address(0), a.gasBudget(), b.gasBudget());
        _same("flags", a.flags(), b.flags());
        _same("permissionCount", a.permissionCount(), b.permissionCount());
        _sameBytes("permissions", a[SessionPolicy.HEADER:t], b[SessionPolicy.HEADER:t]);
        uint256 m = a.tokenCount(t);
        _same("tokenCount", m, b.tokenCount(t));
        for (uint256 j; j < m; ++j) {
            (address token, uint256 cap, uint32 period, uint256 perPeriod) = a.tokenCap(t, j);
            (address token2, uint256 cap2, uint32 period2, uint256 perPeriod2) = b.tokenCap(t, j);
            _same("tokenCaps.token", uint160(token), uint160(token2));
            _notAbove("tokenCaps.cap", token, cap, cap2);
            _same("tokenCaps.period", period, period2);
            _notAbove("tokenCaps.perPeriod", token, perPeriod, perPeriod2);
        }
        uint256 o = a.paymastersOffset(t);
        uint256 l = o + 1 + uint8(a[o]) * SessionPolicy.PAYMASTER_SIZE;
        _same("paymasterCount", uint8(a[o]), uint8(b[o]));
        _sameBytes("paymasters", a[o:l], b[o:l]);
        if (a.flags() & SessionPolicy.FLAG_RATE_LIMIT != 0) {
            (uint32 minInterval, uint32 limit, uint32 period) = a.rateLimit(t);
            (uint32 minInterval2, uint32 limit2, uint32 period2) = b.rateLimit(t);
            if (minInterval2 < minInterval) revert SuccessorRaisesLimit("minInterval", address(0), minInterval, minInterval2);
            _notAbove("usesPerPeriod", address(0), limit, limit2);
            _same("usePeriod", period, period2);
            l += SessionPolicy.RATE_LIMIT_SIZE;
        }
        _sameBytes("argumentRules", a[l:], b[l:]);
    }

    function _same(string memory field, uint256 current, uint256 proposed) private pure {
        if (proposed != current) revert SuccessorChangesField(field, current, proposed);
    }

    function _notAbove(string memory field, address asset, uint256 current, uint256 proposed) private pure {
        if (proposed > current) revert SuccessorRaisesLimit(field, asset, current, proposed);
    }

    function _notBelow(string memory field, address asset, uint256 spent, uint256 proposed) private pure {
        if (proposed < spent) revert SuccessorBelowSpent(field, asset, spent, proposed);
    }

    /// @dev What a ledger word holds as spent in the current period (0 once the fixed window moved on).
    function _spentInPeriod(uint256 word, uint32 period) private view returns (uint256) {
        return word >> INDEX_SHIFT == block.timestamp / period + 1 ? (word >> PERIOD_SHIFT) & MASK112 : 0;
    }

    function _sameBytes(string memory field, bytes calldata current, bytes calldata proposed) private pure {
        if (keccak256(current) != keccak256(proposed)) {
            revert SuccessorChangesField(field, uint256(keccak256(current)), uint256(keccak256(proposed)));
        }
    }

    function _revokeAll() private {
        SessionStorage storage $ = _sessions();
        uint32 epoch = $.epoch;
        if (epoch >= MAX_EPOCH) revert EpochExhausted();
        $.epoch = epoch + 1;
        emit AllSessionsRevoked(epoch + 1);
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @notice The current revoke-all epoch.
    function sessionEpoch() external view returns (uint32) {
        return _sessions().epoch;
    }

    /// @notice A session's live state. `live` is false if it was never granted, was revoked, or predates the
    /// current epoch. A revoked session keeps its counters (uses, nativeSpent, gasSpent) and its grantedEpoch.
    function sessionStatus(bytes32 sessionId)
        external
        view
        returns (bool live, uint32 uses, uint256 nativeSpent, uint256 gasSpent, uint32 grantedEpoch)
    {
        SessionStorage storage $ = _sessions();
        uint256 status = $.status[sessionId];
        uint256 epochPlusOne = (status >> EPOCH_SHIFT) & EPOCH_MASK;
        live = status >> EPOCH_SHIFT == uint256($.epoch) + 1;
        uses = uint32(status & USES_MASK);
        nativeSpent = (status >> NATIVE_SHIFT) & MASK96;
        gasSpent = (status >> GAS_SHIFT) & MASK96;
        grantedEpoch = epochPlusOne == 0 ? 0 : uint32(epochPlusOne - 1);
    }

    /// @notice A session's ledger for `asset` (a token, or address(0) for the periodic native allowance).
    /// @return totalSpent cumulative outflow (tokens only)
    /// @return periodSpent outflow in the period `periodIndex` (block.timestamp / period)
    function sessionLedger(bytes32 sessionId, address asset)
        external
        view
        returns (uint256 totalSpent, uint256 periodSpent, uint256 periodIndex)
    {
        uint256 word = _sessions().ledger[sessionId][asset];
        totalSpent = word & MASK112;
        periodSpent = (word >> PERIOD_SHIFT) & MASK112;
        uint256 stored = word >> INDEX_SHIFT;
        periodIndex = stored == 0 ? 0 : stored - 1;
    }

    /// @notice ERC-1271: only the owner's own signature is valid. Session keys never pass.
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        return _recover(hash, signature) == address(this) ? IERC1271.isValidSignature.selector : bytes4(0xffffffff);
    }

    /// @notice The EntryPoint this account trusts.
    function entryPoint() external pure returns (address) {
        return ENTRY_POINT;
    }

    /*//////////////////////////////////////////////////////////////
                               INTERNALS
    //////////////////////////////////////////////////////////////*/

    function _sessions() private pure returns (SessionStorage storage $) {
        assembly ("memory-safe") {
            $.slot := SESSION_STORAGE_SLOT
        }
    }

    /// @dev Live = granted in the current epoch and not revoked (the revoked bit makes the comparison fail).
    function _requireLive(bytes32 id, uint256 status, uint32 epoch) private pure {
        if (status >> EPOCH_SHIFT != uint256(epoch) + 1) {
            if (status == 0 || status & REVOKED_BIT != 0) revert SessionNotActive(id);
            revert SessionEpochRevoked(id, uint32((status >> EPOCH_SHIFT) - 1), epoch);
        }
    }

    /// @dev Low-s, non-zero ECDSA recovery of a raw hash; returns address(0) on any malformed signature.
    function _recover(bytes32 hash, bytes calldata signature) private pure returns (address recovered) {
        ECDSA.RecoverError err;
        (recovered, err,) = ECDSA.tryRecoverCalldata(hash, signature);
        if (err != ECDSA.RecoverError.NoError) recovered = address(0);
    }

    /// @dev The `policy` argument inside `executeAsSession(bytes policy, Call[] calls)` callData.
    function _policyFromCallData(bytes calldata callData) private pure returns (bytes calldata policy) {
        if (callData.length < 68) revert SessionCallDataMalformed();
        uint256 offset = uint256(bytes32(callData[4:36]));
        if (offset > callData.length) revert SessionCallDataMalformed();
        uint256 start = 4 + offset;
        if (start + 32 > callData.length) revert SessionCallDataMalformed();
        uint256 length = uint256(bytes32(callData[start:start + 32]));
        if (length > callData.length - start - 32) revert SessionCallDataMalformed();
        policy = callData[start + 32:start + 32 + length];
    }

    /// @dev The length of the `calls` array inside `executeAsSession(bytes policy, Call[] calls)` callData.
    function _callCountFromCallData(bytes calldata callData) private pure returns (uint256) {
        uint256 offset = uint256(bytes32(callData[36:68])); // callData.length >= 68: checked by _policyFromCallData
        if (offset > callData.length || 4 + offset + 32 > callData.length) revert SessionCallDataMalformed();
        return uint256(bytes32(callData[4 + offset:4 + offset + 32]));
    }

    function _call(address target, uint256 value, bytes calldata data) private {
        (bool ok, bytes memory result) = target.call{value: value}(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(result, 0x20), mload(result))
            }
        }
    }

    /// @dev Scope rules at grant: forbidden targets, valid modes, no multicalls or duplicates, and the asset rules
    /// (default deny for uncapped assets, accountable functions only on capped tokens).
    function _checkPermissions(bytes calldata policy, uint256 t) private view {
        uint256 n = policy.permissionCount();
        if (n == 0) revert EmptyScope();
        uint256 tokenCount = policy.tokenCount(t);
        bool uncappedAllowed = policy.flags() & SessionPolicy.FLAG_ALLOW_UNCAPPED_ASSETS != 0;
        bool standingAllowed = policy.flags() & SessionPolicy.FLAG_ALLOW_STANDING_ALLOWANCES != 0;
        for (uint256 i; i < n; ++i) {
            (address target, bytes4 selector, uint8 mode, uint256 rules) = policy.permission(i);
            if (target == address(this) || target == ENTRY_POINT || target == address(0) || target == TokenRules.PERMIT2)
            {
                revert ForbiddenTarget(target);
            }
            if (mode > SessionPolicy.MODE_EMPTY_CALLDATA || (mode != SessionPolicy.MODE_EXACT && selector != 0)) {
                revert InvalidPermission(target, selector, mode);
            }
            if (_tokenIndex(policy, t, tokenCount, target) < tokenCount) {
                // A capped token: only functions whose effect can be accounted exactly (any-selector permissions
                // are checked call by call at use; a plain transfer reaches a fallback nobody can account for).
                if (
                    mode == SessionPolicy.MODE_EMPTY_CALLDATA
                        || (mode == SessionPolicy.MODE_EXACT && !TokenRules.isAccountable(selector))
                ) revert TokenFunctionNotAccountable(target, selector);
            } else {
                // Default deny: an uncapped asset, or a contract already allowed to spend a capped one.
                if (
                    !uncappedAllowed
                        && (
                            (mode == SessionPolicy.MODE_EXACT && TokenRules.movesAssets(selector))
                                || TokenRules.looksLikeAsset(target)
                        )
                ) revert UncappedAsset(target, selector);
                if (!standingAllowed) _requireNoStandingAllowance(policy, t, tokenCount, target, false);
            }
            if (mode == SessionPolicy.MODE_EXACT && _isMulticall(selector)) revert MulticallNotAllowed(target, selector);
            // Permissions for the same call are alternatives (OR): allowed only if each carries its own argument
            // rules, since one without rules would make the others meaningless. For the same reason an
            // any-selector permission may not share a target with a ruled one (only exact ones carry rules).
            for (uint256 k; k < i; ++k) {
                (address t2, bytes4 s2, uint8 m2, uint256 r2) = policy.permission(k);
                if (t2 != target) continue;
                if (s2 == selector && m2 == mode && (rules == 0 || r2 == 0)) revert DuplicatePermission(target, selector, mode);
                if (mode == SessionPolicy.MODE_ANY_SELECTOR && r2 != 0) revert RulesBypassed(target, s2);
                if (m2 == SessionPolicy.MODE_ANY_SELECTOR && rules != 0) revert RulesBypassed(target, selector);
            }
        }
    }

    /// @dev Checks the token caps and writes a fresh (zero-spent, non-zero) ledger word for each.
    function _initTokenLedgers(bytes calldata policy, uint256 t, bytes32 sessionId) private {
        mapping(address => uint256) storage ledger = _sessions().ledger[sessionId];
        uint256 m = policy.tokenCount(t);
        for (uint256 j; j < m; ++j) {
            (address token,, uint32 period, uint256 perPeriod) = policy.tokenCap(t, j);
            if (token == address(0) || token == address(this)) revert InvalidTokenCap(token);
            for (uint256 k; k < j; ++k) {
                if (policy.tokenAt(t, k) == token) revert InvalidTokenCap(token);
            }
            _checkPeriod(token, period, perPeriod);
            ledger[token] = _freshLedger(period);
        }
    }

    function _checkPaymasters(bytes calldata policy, uint256 o) private pure {
        uint256 k = uint8(policy[o]);
        for (uint256 h; h < k; ++h) {
            uint256 a = o + 1 + h * SessionPolicy.PAYMASTER_SIZE;
            address paymaster = address(bytes20(policy[a:a + 20]));
            if (paymaster == address(0)) revert InvalidPaymaster(paymaster);
            for (uint256 g; g < h; ++g) {
                uint256 b = o + 1 + g * SessionPolicy.PAYMASTER_SIZE;
                if (address(bytes20(policy[b:b + 20])) == paymaster) revert InvalidPaymaster(paymaster);
            }
        }
    }

    function _checkPeriod(address asset, uint32 period, uint256 perPeriod) private pure {
        if ((period == 0) != (perPeriod == 0)) revert InvalidPeriod(asset, period, perPeriod);
    }

    /// @dev A ledger word with zero spent and a non-zero index field (the current period, or 1 if none).
    function _freshLedger(uint32 period) private view returns (uint256) {
        uint256 index = period == 0 ? 1 : block.timestamp / period + 1;
        return index << INDEX_SHIFT;
    }

    /// @dev Functions that bundle inner calls the policy cannot see.
    function _isMulticall(bytes4 s) private pure returns (bool) {
        return s == 0xac9650d8 // multicall(bytes[])
            || s == 0x5ae401dc // multicall(uint256,bytes[])
            || s == 0x1f0464d1 // multicall(bytes32,bytes[])
            || s == 0x252dba42 // aggregate((address,bytes)[])
            || s == 0x82ad56cb // aggregate3((address,bool,bytes)[])
            || s == 0x174dea71 // aggregate3Value((address,bool,uint256,bytes)[])
            || s == 0xbce38bd7 // tryAggregate(bool,(address,bytes)[])
            || s == 0xc3077fa9 // blockAndAggregate((address,bytes)[])
            || s == 0x399542e9 // tryBlockAndAggregate(bool,(address,bytes)[])
            || s == 0x3593564c // execute(bytes,bytes[],uint256) (universal router)
            || s == 0x24856bc3 // execute(bytes,bytes[])
            || s == 0xe9ae5c53 // execute(bytes32,bytes) (ERC-7821)
            || s == 0x34fcd5be // executeBatch((address,uint256,bytes)[])
            || s == SmartKeysAccount.executeAsSession.selector;
    }

    function _lockSession() private {
        bytes32 slot = SESSION_LOCK_SLOT;
        uint256 locked;
        assembly ("memory-safe") {
            locked := tload(slot)
        }
        if (locked != 0) revert SessionReentered();
        assembly ("memory-safe") {
            tstore(slot, 1)
        }
    }

    function _unlockSession() private {
        bytes32 slot = SESSION_LOCK_SLOT;
        assembly ("memory-safe") {
            tstore(slot, 0)
        }
    }
}
