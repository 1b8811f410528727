// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IPaymaster} from "@account-abstraction/contracts/interfaces/IPaymaster.sol";
import {PackedUserOperation} from "@account-abstraction/contracts/interfaces/PackedUserOperation.sol";
import {IEntryPointDeposit} from "./MockPaymaster.sol";


/// @notice Test-only ERC-20 token paymaster, shaped like the ones in production: it pays the EntryPoint in ether
/// from its deposit and, in postOp, takes the actual gas cost from the sender in tokens, at `tokensPerEther`
/// (token base units per 1e18 wei), from an allowance the account's owner gave it beforehand.
contract MockTokenPaymaster is IPaymaster {
    address public constant ENTRY_POINT = 0x4337084D9E255Ff0702461CF8895CE9E3b5Ff108;
    IERC20 public immutable token;
    uint256 public immutable tokensPerEther;

    constructor(IERC20 token_, uint256 tokensPerEther_) {
        token = token_;
        tokensPerEther = tokensPerEther_;
    }

    function deposit() external payable {
        IEntryPointDeposit(ENTRY_POINT).depositTo{value: msg.value}(address(this));
    }

    function validatePaymasterUserOp(PackedUserOperation calldata userOp, bytes32, uint256)
        external
        view
        returns (bytes memory context, uint256 validationData)
    {
        require(msg.sender == ENTRY_POINT, "only EntryPoint");
        return (abi.encode(userOp.sender), 0);
    }

    function postOp(PostOpMode, bytes calldata context, uint256 actualGasCost, uint256) external {
        require(msg.sender == ENTRY_POINT, "only EntryPoint");
        address sender = abi.decode(context, (address));
        token.transferFrom(sender, address(this), actualGasCost * tokensPerEther / 1e18);
    }
}
