// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @notice Test-only "router" that pulls tokens through allowances it was given, and can pay back
/// (to show that inflows never offset outflows).
contract MockRouter {
    /// Pull `amount` of `token` from `from` (needs an allowance) to `to`.
    function pull(IERC20 token, address from, address to, uint256 amount) external {
        token.transferFrom(from, to, amount);
    }

    /// Pull `amount` from the caller, then send `refund` back to it from the router's own balance.
    function swapAndRefund(IERC20 token, uint256 amount, uint256 refund) external {
        token.transferFrom(msg.sender, address(this), amount);
        token.transfer(msg.sender, refund);
    }

    /// Send tokens the router holds (an inflow to `to`).
    function payout(IERC20 token, address to, uint256 amount) external {
        token.transfer(to, amount);
    }
}
