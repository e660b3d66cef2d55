// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Minimal ERC-20 for tests and local chains
/// @notice Name, symbol, decimals, owner-only mint, transfer, approve, transferFrom, events.
/// @dev A transfer the sender cannot cover returns false instead of reverting, as some deployed
/// tokens do (ERC-20 allows both), so tests exercise the escrow's return-value checks.
contract TestToken {
    string public name;
    string public symbol;
    uint8 public immutable decimals;
    address public immutable owner;
    uint256 public totalSupply;
    mapping(address account => uint256 amount) public balanceOf;
    mapping(address account => mapping(address spender => uint256 amount)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    error NotOwner();

    constructor(string memory name_, string memory symbol_, uint8 decimals_) {
        name = name_;
        symbol = symbol_;
        decimals = decimals_;
        owner = msg.sender;
    }

    /// @notice Create `amount` tokens for `to`; only the deployer may.
    function mint(address to, uint256 amount) external {
        if (msg.sender != owner) revert NotOwner();
        totalSupply += amount;
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        return _move(msg.sender, to, amount);
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed < amount) return false;
        if (!_move(from, to, amount)) return false;
        allowance[from][msg.sender] = allowed - amount;
        return true;
    }

    function _move(address from, address to, uint256 amount) private returns (bool) {
        uint256 balance = balanceOf[from];
        if (balance < amount) return false;
        balanceOf[from] = balance - amount;
        balanceOf[to] += amount;
        emit Transfer(from, to, amount);
        return true;
    }
}
