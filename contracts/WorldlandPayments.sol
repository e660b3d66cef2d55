// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @notice The three ERC-20 calls the escrow makes. Return values are checked through a low-level
/// call (see `_tokenCall`), so tokens that return nothing (older ones) work as well.
interface IERC20 {
    function transfer(address to, uint256 amount) external returns (bool);
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
}

/// @title Worldland GPU rental payments
/// @notice Renters deposit an ERC-20 payment token into escrow; the hub's settler moves
/// `durationSeconds x rate` from a renter's deposit to a provider's earnings once per settlement
/// id; providers withdraw their earnings; renters withdraw what is still theirs after a notice
/// period.
/// @dev Choices a settlement worker relies on:
///  - `gpuType` is `keccak256(bytes(name))` of the GPU model name exactly as the hub stores it
///    from NVML (for example "NVIDIA H100 80GB HBM3"): any name fits, no lookup table, and the
///    worker computes it from the ledger row alone. The rate is wei per second for ONE GPU, so
///    the worker passes GPU-seconds (seconds x GPU count) as `durationSeconds`.
///  - `settlementId` is a number the hub allocates, unique per contract. Paid ids are kept in a
///    bitmap, 256 ids per storage word, so a batch of consecutive ids writes one word instead of
///    one fresh slot per id (a fresh slot costs 22,100 gas, more than the rest of a payment).
///  - Only paid ids are recorded. An item refused for an insufficient deposit or an unknown GPU
///    type can be retried later with the same id; a paid id is refused forever.
///  - `payment` reverts with `Refused(id, reason)`; the batch `payments` never reverts for a
///    refused item but emits `PaymentRefused(id, ..., reason)` for it and goes on, so one renter's
///    empty deposit never fails the other rows of a batch.
///  - The rate in force when the settlement is mined is charged (the `Paid` event carries the
///    amount). `durationSeconds` is a uint64 and rates are at most 2^128 - 1, so the product
///    always fits and a batch cannot revert on overflow.
///  - A renter who could withdraw at once could empty the deposit between using a GPU and the
///    hub settling for it. Withdrawals therefore take two steps: `requestWithdrawal`, then
///    `withdrawDeposit` after `withdrawalDelay` seconds, paying what is left of the request once
///    the hub has settled in between. Providers withdraw their earnings at once.
///  - The token must be a plain ERC-20 (no fee on transfer, no rebasing). No native coin.
contract WorldlandPayments {
    /// @notice Why a payment was not made; `None` means it was paid.
    enum Refusal {
        None,
        AlreadySettled,
        UnknownGpuType,
        InsufficientDeposit,
        ZeroProvider
    }

    /// @notice One settlement, fields in the order of `payment`'s parameters.
    struct Payment {
        address user;
        address provider;
        uint64 durationSeconds;
        bytes32 gpuType;
        uint256 settlementId;
    }

    /// @notice A renter's pending withdrawal: at most `amount`, not before `availableAt`.
    struct Withdrawal {
        uint256 amount;
        uint256 availableAt;
    }

    /// @notice The payment token, fixed for the contract's life.
    address public immutable token;
    /// @notice Seconds between `requestWithdrawal` and `withdrawDeposit`: the hub's time to settle.
    uint256 public immutable withdrawalDelay;
    /// @notice Sets rates, rotates the settler and hands over the operator role.
    address public operator;
    /// @notice The hub's hot wallet: the only caller of `payment` and `payments`.
    address public settler;
    /// @notice Wei per second per GPU, by gpuType; 0 means the type is not priced.
    mapping(bytes32 gpuType => uint256 weiPerSecond) public ratePerSecond;
    /// @notice A renter's escrowed tokens, not yet paid out.
    mapping(address user => uint256 amount) public deposits;
    /// @notice A provider's earnings, withdrawable at any time.
    mapping(address provider => uint256 amount) public earnings;
    /// @notice A renter's pending withdrawal request.
    mapping(address user => Withdrawal request) public withdrawals;
    mapping(uint256 word => uint256 bits) private settledWords;
    uint256 private lock = 1;

    event Deposited(address indexed user, uint256 amount, uint256 deposit);
    event WithdrawalRequested(address indexed user, uint256 amount, uint256 availableAt);
    event DepositWithdrawn(address indexed user, uint256 amount, uint256 deposit);
    event EarningsWithdrawn(address indexed provider, uint256 amount);
    event RateSet(bytes32 indexed gpuType, uint256 weiPerSecond);
    event SettlerSet(address indexed previousSettler, address indexed newSettler);
    event OperatorSet(address indexed previousOperator, address indexed newOperator);
    event Paid(
        uint256 indexed settlementId,
        address indexed user,
        address indexed provider,
        bytes32 gpuType,
        uint256 durationSeconds,
        uint256 amount
    );
    event PaymentRefused(
        uint256 indexed settlementId,
        address indexed user,
        address indexed provider,
        Refusal reason
    );

    error NotOperator();
    error NotSettler();
    error ZeroAddress();
    error NotAContract();
    error Refused(uint256 settlementId, Refusal reason);
    error InsufficientDeposit(uint256 requested, uint256 available);
    error WithdrawalNotReady(uint256 availableAt);
    error NothingToWithdraw();
    error TokenCallFailed();
    error Reentered();

    modifier onlyOperator() {
        if (msg.sender != operator) revert NotOperator();
        _;
    }

    modifier onlySettler() {
        if (msg.sender != settler) revert NotSettler();
        _;
    }

    /// @dev Every function that calls the token holds this lock, on top of updating state
    /// before the call, so a token with transfer hooks cannot re-enter a withdrawal.
    modifier nonReentrant() {
        if (lock != 1) revert Reentered();
        lock = 2;
        _;
        lock = 1;
    }

    /// @param token_ The ERC-20 payment token.
    /// @param settler_ The hub's hot wallet.
    /// @param withdrawalDelay_ Seconds a renter waits between requesting and taking a withdrawal.
    constructor(address token_, address settler_, uint256 withdrawalDelay_) {
        if (token_.code.length == 0) revert NotAContract();
        if (settler_ == address(0)) revert ZeroAddress();
        token = token_;
        withdrawalDelay = withdrawalDelay_;
        operator = msg.sender;
        settler = settler_;
        emit OperatorSet(address(0), msg.sender);
        emit SettlerSet(address(0), settler_);
    }

    // ---- operator ----

    /// @notice Price one GPU of `gpuType` at `weiPerSecond`; 0 unprices it (payments refused).
    function setRate(bytes32 gpuType, uint128 weiPerSecond) external onlyOperator {
        ratePerSecond[gpuType] = weiPerSecond;
        emit RateSet(gpuType, weiPerSecond);
    }

    /// @notice Rotate the hub's hot wallet; the old one can no longer pay from the next block.
    function setSettler(address newSettler) external onlyOperator {
        if (newSettler == address(0)) revert ZeroAddress();
        emit SettlerSet(settler, newSettler);
        settler = newSettler;
    }

    /// @notice Hand the operator role to another address (one step: check the address).
    function setOperator(address newOperator) external onlyOperator {
        if (newOperator == address(0)) revert ZeroAddress();
        emit OperatorSet(operator, newOperator);
        operator = newOperator;
    }

    // ---- renters ----

    /// @notice Escrow `amount` tokens for GPU time; approve this contract for them first.
    function deposit(uint256 amount) external nonReentrant {
        uint256 balance = deposits[msg.sender] + amount;
        deposits[msg.sender] = balance;
        emit Deposited(msg.sender, amount, balance);
        _tokenCall(abi.encodeCall(IERC20.transferFrom, (msg.sender, address(this), amount)));
    }

    /// @notice Ask to withdraw up to `amount` of the deposit after `withdrawalDelay` seconds;
    /// replaces an earlier request, and 0 cancels it. Settlements go on meanwhile, and the
    /// withdrawal pays what is left of `amount` then.
    function requestWithdrawal(uint256 amount) external {
        uint256 available = deposits[msg.sender];
        if (amount > available) revert InsufficientDeposit(amount, available);
        uint256 availableAt = block.timestamp + withdrawalDelay;
        withdrawals[msg.sender] = Withdrawal(amount, availableAt);
        emit WithdrawalRequested(msg.sender, amount, availableAt);
    }

    /// @notice Take the requested withdrawal, capped at what the deposit still holds.
    function withdrawDeposit() external nonReentrant {
        Withdrawal memory request = withdrawals[msg.sender];
        if (request.amount == 0) revert NothingToWithdraw();
        if (block.timestamp < request.availableAt) revert WithdrawalNotReady(request.availableAt);
        uint256 available = deposits[msg.sender];
        uint256 amount = request.amount < available ? request.amount : available;
        if (amount == 0) revert NothingToWithdraw();
        delete withdrawals[msg.sender];
        deposits[msg.sender] = available - amount;
        emit DepositWithdrawn(msg.sender, amount, available - amount);
        _tokenCall(abi.encodeCall(IERC20.transfer, (msg.sender, amount)));
    }

    // ---- providers ----

    /// @notice Withdraw all of the caller's earnings.
    function withdraw() external nonReentrant {
        uint256 amount = earnings[msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        earnings[msg.sender] = 0;
        emit EarningsWithdrawn(msg.sender, amount);
        _tokenCall(abi.encodeCall(IERC20.transfer, (msg.sender, amount)));
    }

    // ---- settler ----

    /// @notice Pay `durationSeconds x ratePerSecond[gpuType]` from `user`'s deposit to
    /// `provider`'s earnings, once per `settlementId`; reverts with `Refused` otherwise.
    function payment(
        address user,
        address provider,
        uint64 durationSeconds,
        bytes32 gpuType,
        uint256 settlementId
    ) external onlySettler {
        Refusal reason = _settle(user, provider, durationSeconds, gpuType, settlementId);
        if (reason != Refusal.None) revert Refused(settlementId, reason);
    }

    /// @notice Settle many payments in one transaction. Each item is paid (`Paid`) or refused
    /// (`PaymentRefused` with the reason); a refused item does not revert the batch.
    function payments(Payment[] calldata items) external onlySettler {
        for (uint256 i = 0; i < items.length; ++i) {
            Payment calldata item = items[i];
            Refusal reason = _settle(
                item.user,
                item.provider,
                item.durationSeconds,
                item.gpuType,
                item.settlementId
            );
            if (reason != Refusal.None) {
                emit PaymentRefused(item.settlementId, item.user, item.provider, reason);
            }
        }
    }

    /// @notice Whether `settlementId` has been paid.
    function isSettled(uint256 settlementId) external view returns (bool) {
        return settledWords[settlementId >> 8] & (1 << (settlementId & 0xff)) != 0;
    }

    /// @dev Checks, then records the id and moves the amount, then emits `Paid`. No external
    /// call, so nothing can re-enter between the balance updates.
    function _settle(
        address user,
        address provider,
        uint64 durationSeconds,
        bytes32 gpuType,
        uint256 settlementId
    ) private returns (Refusal) {
        if (provider == address(0)) return Refusal.ZeroProvider;
        uint256 word = settlementId >> 8;
        uint256 bits = settledWords[word];
        uint256 bit = 1 << (settlementId & 0xff);
        if (bits & bit != 0) return Refusal.AlreadySettled;
        uint256 rate = ratePerSecond[gpuType];
        if (rate == 0) return Refusal.UnknownGpuType;
        uint256 amount = uint256(durationSeconds) * rate;
        uint256 available = deposits[user];
        if (available < amount) return Refusal.InsufficientDeposit;
        settledWords[word] = bits | bit;
        deposits[user] = available - amount;
        earnings[provider] += amount;
        emit Paid(settlementId, user, provider, gpuType, durationSeconds, amount);
        return Refusal.None;
    }

    /// @dev Calls the token and accepts success with no return data or a true bool; a revert or
    /// a false fails the whole call (the constructor made sure the token has code).
    function _tokenCall(bytes memory data) private {
        (bool ok, bytes memory result) = token.call(data);
        if (!ok || (result.length != 0 && !abi.decode(result, (bool)))) revert TokenCallFailed();
    }
}
