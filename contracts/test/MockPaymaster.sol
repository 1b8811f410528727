// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IPaymaster} from "@account-abstraction/contracts/interfaces/IPaymaster.sol";
import {PackedUserOperation} from "@account-abstraction/contracts/interfaces/PackedUserOperation.sol";

interface IEntryPointDeposit {
    function depositTo(address account) external payable;
}

/// @notice Test-only paymaster that sponsors every operation (fund it with `deposit`).
contract MockPaymaster is IPaymaster {
    address public constant ENTRY_POINT = 0x4337084D9E255Ff0702461CF8895CE9E3b5Ff108;

    function deposit() external payable {
        IEntryPointDeposit(ENTRY_POINT).depositTo{value: msg.value}(address(this));
    }

    function validatePaymasterUserOp(PackedUserOperation calldata, bytes32, uint256)
        external
        pure
        returns (bytes memory context, uint256 validationData)
    {
        return ("", 0);
    }

    function postOp(PostOpMode, bytes calldata, uint256, uint256) external pure {}
}
