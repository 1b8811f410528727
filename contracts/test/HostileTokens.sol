// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice Test-only tokens that behave the way real tokens do and a naive spend cap does not expect.

/// @notice Takes a fee ON TOP of every transfer from the sender (1% by default, in basis points): the sender
/// loses `amount + fee` while the call's arguments name only `amount`.
contract FeeOnTransferToken is ERC20 {
    uint256 public immutable feeBps;
    address public constant FEE_SINK = 0x000000000000000000000000000000000000Fee5;

    constructor(uint256 feeBps_) ERC20("Fee Token", "FEE") {
        feeBps = feeBps_;
    }

    function decimals() public pure override returns (uint8) {
        return 6;
    }

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (from != address(0) && to != address(0) && to != FEE_SINK) {
            super._update(from, FEE_SINK, value * feeBps / 10_000);
        }
    }
}

/// @notice Answers ERC-20 calls in the ways tokens in the wild do, by `mode`:
/// 0 standard; 1 returns `false` and moves nothing (as some older tokens do instead of reverting);
/// 2 moves and returns no data (USDT-style, which callers must accept); 3 moves and returns the word 2.
contract OddReturnToken is ERC20 {
    uint8 public mode;

    constructor() ERC20("Odd Token", "ODD") {}

    function decimals() public pure override returns (uint8) {
        return 6;
    }

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function setMode(uint8 mode_) external {
        mode = mode_;
    }

    function transfer(address to, uint256 value) public override returns (bool) {
        if (mode == 1) return false;
        super.transfer(to, value);
        _answer();
        return true;
    }

    function transferFrom(address from, address to, uint256 value) public override returns (bool) {
        if (mode == 1) return false;
        super.transferFrom(from, to, value);
        _answer();
        return true;
    }

    function approve(address spender, uint256 value) public override returns (bool) {
        if (mode == 1) return false;
        super.approve(spender, value);
        _answer();
        return true;
    }

    function _answer() private view {
        uint8 m = mode;
        if (m == 2) {
            assembly ("memory-safe") {
                return(0, 0)
            }
        }
        if (m == 3) {
            assembly ("memory-safe") {
                mstore(0, 2)
                return(0, 32)
            }
        }
    }
}

/// @notice A token with the allowance functions that predate `increaseAllowance` and token-specific ways to give
/// someone else power over a holder's balance: each lets a third party move the balance later.
contract LegacyAllowanceToken is ERC20 {
    mapping(address holder => mapping(address operator => bool)) public isOperator;

    constructor() ERC20("Legacy Token", "LEG") {}

    function decimals() public pure override returns (uint8) {
        return 6;
    }

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @dev The pre-2017 spelling of increaseAllowance (OpenZeppelin 1.x StandardToken).
    function increaseApproval(address spender, uint256 added) external returns (bool) {
        _approve(msg.sender, spender, allowance(msg.sender, spender) + added);
        return true;
    }

    /// @dev A made-up operator function, as many tokens have: no list of selectors can know them all.
    function setOperator(address operator, bool approved) external {
        isOperator[msg.sender][operator] = approved;
    }

    /// @dev Operators move the holder's whole balance.
    function operatorTransfer(address from, address to, uint256 value) external {
        require(isOperator[from][msg.sender], "not operator");
        _transfer(from, to, value);
    }
}

/// @notice A contract holders approve once on a token, after which anyone the holder names can pull through it
/// (the shape of Permit2 deployed elsewhere, of allowance holders and relayer approvals): `approve` moves nothing,
/// yet hands on the power to move the holder's whole approved balance.
contract AllowanceForwarder {
    mapping(address holder => mapping(address token => mapping(address spender => uint256))) public allowed;

    function approve(address token, address spender, uint160 amount, uint48) external {
        allowed[msg.sender][token][spender] = amount;
    }

    function pull(address token, address from, address to, uint256 amount) external {
        allowed[from][token][msg.sender] -= amount;
        require(ERC20(token).transferFrom(from, to, amount), "pull failed");
    }
}

/// @notice A minimal ERC-6909 multi-token: assets without `balanceOf(address)`.
contract MultiToken6909 {
    mapping(address owner => mapping(uint256 id => uint256)) public balanceOf;

    function mint(address to, uint256 id, uint256 amount) external {
        balanceOf[to][id] += amount;
    }

    function transfer(address to, uint256 id, uint256 amount) external returns (bool) {
        balanceOf[msg.sender][id] -= amount;
        balanceOf[to][id] += amount;
        return true;
    }

    function supportsInterface(bytes4 interfaceId) external pure returns (bool) {
        return interfaceId == 0x0f632fb3 || interfaceId == 0x01ffc9a7;
    }
}

/// @notice An ERC-20 whose `balanceOf` costs more than a cheap probe allows (checkpointed or rebasing tokens).
contract CostlyBalanceToken is ERC20 {
    constructor() ERC20("Costly", "CST") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function balanceOf(address holder) public view override returns (uint256 amount) {
        amount = super.balanceOf(holder);
        uint256 sink;
        for (uint256 slot = 1000; slot < 1030; ++slot) {
            assembly ("memory-safe") {
                sink := add(sink, sload(slot)) // 30 cold reads: 63,000 gas
            }
        }
        if (sink == type(uint256).max) amount = 0;
    }
}
