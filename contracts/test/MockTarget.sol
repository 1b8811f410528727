// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice Test-only call target: records calls, accepts value, can revert with a custom error, and can
/// call back into an arbitrary address (to try reentrancy).
contract MockTarget {
    error Boom(uint256 code);

    event Called(address caller, uint256 value, bytes data);

    uint256 public counter;

    receive() external payable {
        emit Called(msg.sender, msg.value, "");
    }

    function ping(uint256 x) external payable returns (uint256) {
        counter += x;
        emit Called(msg.sender, msg.value, msg.data);
        return counter;
    }

    /// Static arguments of every rule kind (signed, bool, fixed bytes, address), for argument-rule tests.
    function configure(int24 tick, bool flag, bytes4 tag, address who) external {
        counter += 1;
        emit Called(msg.sender, 0, abi.encode(tick, flag, tag, who));
    }

    function other() external payable {
        emit Called(msg.sender, msg.value, msg.data);
    }

    function fail(uint256 code) external pure {
        revert Boom(code);
    }

    /// Forward `data` to `to` (e.g. back into the account) and bubble any revert.
    function callBack(address to, bytes calldata data) external payable {
        (bool ok, bytes memory ret) = to.call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 0x20), mload(ret))
            }
        }
    }

    /// A multicall-shaped function: the account must never let a wildcard reach it.
    function multicall(bytes[] calldata data) external returns (bytes[] memory results) {
        results = new bytes[](data.length);
        for (uint256 i; i < data.length; ++i) {
            (bool ok, bytes memory ret) = address(this).delegatecall(data[i]);
            require(ok);
            results[i] = ret;
        }
    }
}
