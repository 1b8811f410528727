// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title TokenRules
/// @notice What the session engine knows about token functions: which calls on a capped token it can account for
/// exactly, which amount a call declares, which calls must return ERC-20 `true`, and which functions move assets.
/// @dev Overview
/// A session's token cap is only as good as the engine's knowledge of what a call can do to the capped balance
/// and to third parties' power over it. The rules, all pure:
/// - On a capped token, only ACCOUNTABLE functions may be called: their effect on the balance is measured and
///   their effect on third parties' power is either none or a declared allowance that is charged in full.
///   Any other function (old `increaseApproval`, `permit`, ERC-777 operators, ERC-1363 `approveAndCall`, a
///   token-specific outflow, or one nobody has named yet) is refused: its effect cannot be accounted exactly.
/// - A call DECLARES an amount when its arguments name one: `transfer`, `approve`, `increaseAllowance` (argument
///   2) and `transferFrom` (argument 3). The engine charges max(declared, measured balance decrease).
/// - ERC-20 functions that return a bool must return `true` (or nothing, for tokens that predate the standard's
///   return value); `false` or anything else fails the use (ERC-20: callers MUST handle `false`).
/// - ASSET-MOVING functions are those of ERC-20, ERC-721, ERC-1155, ERC-777, ERC-1363 and ERC-677 that move a
///   holder's assets or give someone else power over them. A permission for one of them on a target the policy
///   does not cap is refused at grant unless the policy sets ALLOW_UNCAPPED_ASSETS.
library TokenRules {
    // ERC-20, accountable on a capped token.
    bytes4 internal constant TRANSFER = 0xa9059cbb; // transfer(address,uint256)
    bytes4 internal constant TRANSFER_FROM = 0x23b872dd; // transferFrom(address,address,uint256)
    bytes4 internal constant APPROVE = 0x095ea7b3; // approve(address,uint256)
    bytes4 internal constant INCREASE_ALLOWANCE = 0x39509351; // increaseAllowance(address,uint256)
    bytes4 internal constant DECREASE_ALLOWANCE = 0xa457c2d7; // decreaseAllowance(address,uint256)
    // Wrapped-native functions (WETH9): deposit adds to the balance, withdraw burns it (measured).
    bytes4 internal constant DEPOSIT = 0xd0e30db0; // deposit()
    bytes4 internal constant WITHDRAW = 0x2e1a7d4d; // withdraw(uint256)
    // Burning the caller's own balance (OpenZeppelin ERC20Burnable): measured, gives no one any power.
    bytes4 internal constant BURN = 0x42966c68; // burn(uint256)

    /// @dev The canonical Permit2 (same address on every chain). An account that approved it lets any caller of
    /// `Permit2.approve` hand that allowance to anyone, outside every later measurement: never a session target.
    address internal constant PERMIT2 = 0x000000000022D473030F116dDEE9F6B43aC78BA3;

    /// @dev True if a call of `selector` on a capped token can be accounted exactly (see the overview).
    function isAccountable(bytes4 selector) internal pure returns (bool) {
        return selector == TRANSFER || selector == APPROVE || selector == TRANSFER_FROM
            || selector == INCREASE_ALLOWANCE || selector == DECREASE_ALLOWANCE || selector == DEPOSIT
            || selector == WITHDRAW || selector == BURN;
    }

    /// @dev True for the ERC-20 functions whose bool result must be `true`.
    function returnsBool(bytes4 selector) internal pure returns (bool) {
        return selector == TRANSFER || selector == APPROVE || selector == TRANSFER_FROM
            || selector == INCREASE_ALLOWANCE || selector == DECREASE_ALLOWANCE;
    }

    /// @dev The amount a call declares in its arguments (0 if none, or if the calldata is too short to hold it).
    function declaredAmount(bytes calldata data) internal pure returns (uint256 amount) {
        if (data.length < 4) return 0;
        bytes4 selector = bytes4(data[:4]);
        uint256 offset;
        if (selector == TRANSFER || selector == APPROVE || selector == INCREASE_ALLOWANCE) {
            offset = 36;
        } else if (selector == TRANSFER_FROM) {
            offset = 68;
        } else {
            return 0;
        }
        if (data.length < offset + 32) return 0;
        amount = uint256(bytes32(data[offset:offset + 32]));
    }

    /// @dev True if a call returned what a successful ERC-20 bool function returns: ABI `true`, or no data
    /// from a contract (tokens that predate the return value). As OpenZeppelin's SafeERC20 decides.
    function isSuccessResult(address target, bytes memory result) internal view returns (bool) {
        if (result.length == 0) return target.code.length != 0;
        if (result.length < 32) return false;
        uint256 word;
        assembly ("memory-safe") {
            word := mload(add(result, 32))
        }
        return word == 1;
    }

    /// @dev Functions of the token standards that move a holder's assets or give a third party power over them.
    function movesAssets(bytes4 s) internal pure returns (bool) {
        return isAccountable(s) // the ERC-20 set above (WETH's deposit/withdraw and burn included)
            || s == 0xd505accf // permit(address,address,uint256,uint256,uint8,bytes32,bytes32) (ERC-2612)
            || s == 0xd73dd623 // increaseApproval(address,uint256)
            || s == 0xa22cb465 // setApprovalForAll(address,bool) (ERC-721, ERC-1155)
            || s == 0x42842e0e // safeTransferFrom(address,address,uint256) (ERC-721)
            || s == 0xb88d4fde // safeTransferFrom(address,address,uint256,bytes) (ERC-721)
            || s == 0xf242432a // safeTransferFrom(address,address,uint256,uint256,bytes) (ERC-1155)
            || s == 0x2eb2c2d6 // safeBatchTransferFrom(address,address,uint256[],uint256[],bytes) (ERC-1155)
            || s == 0x9bd9bbc6 // send(address,uint256,bytes) (ERC-777)
            || s == 0x62ad1b83 // operatorSend(address,address,uint256,bytes,bytes) (ERC-777)
            || s == 0x959b8c3f // authorizeOperator(address) (ERC-777)
            || s == 0x4000aea0 // transferAndCall(address,uint256,bytes) (ERC-677, ERC-1363)
            || s == 0x1296ee62 // transferAndCall(address,uint256) (ERC-1363)
            || s == 0xd8fbe994 // transferFromAndCall(address,address,uint256) (ERC-1363)
            || s == 0xc1d34b89 // transferFromAndCall(address,address,uint256,bytes) (ERC-1363)
            || s == 0x3177029f // approveAndCall(address,uint256) (ERC-1363)
            || s == 0xcae9ca51 // approveAndCall(address,uint256,bytes) (ERC-1363)
            || s == 0x095bcdb6 // transfer(address,uint256,uint256) (ERC-6909)
            || s == 0xfe99049a // transferFrom(address,address,uint256,uint256) (ERC-6909)
            || s == 0x426a8493 // approve(address,uint256,uint256) (ERC-6909)
            || s == 0x558a7297 // setOperator(address,bool) (ERC-6909)
            || s == 0xb460af94 // withdraw(uint256,address,address) (ERC-4626)
            || s == 0xba087652; // redeem(uint256,address,address) (ERC-4626)
    }

    /// @dev True if `target` answers like an asset ledger: ERC-20/721 `balanceOf(address)` returns a word, or
    /// ERC-165 says ERC-1155 or ERC-6909. Used at grant only (never in validation), with a bounded gas stipend
    /// per probe; a probe that runs out of it counts as an asset (fail closed: an expensive `balanceOf`).
    function looksLikeAsset(address target) internal view returns (bool) {
        if (target.code.length == 0) return false;
        uint256 before = gasleft();
        (bool ok, bytes memory ret) =
            target.staticcall{gas: PROBE_GAS}(abi.encodeWithSelector(0x70a08231, address(this)));
        if (ok && ret.length >= 32) return true;
        if (!ok && before - gasleft() >= PROBE_GAS) return true;
        return _supports(target, 0xd9b67a26) || _supports(target, 0x0f632fb3); // ERC-1155, ERC-6909
    }

    uint256 private constant PROBE_GAS = 50_000;

    function _supports(address target, bytes4 interfaceId) private view returns (bool) {
        (bool ok, bytes memory ret) =
            target.staticcall{gas: PROBE_GAS}(abi.encodeWithSelector(0x01ffc9a7, interfaceId));
        return ok && ret.length >= 32 && abi.decode(ret, (uint256)) == 1;
    }
}
