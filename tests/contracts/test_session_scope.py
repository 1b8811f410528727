"""SmartKeysAccount session scope: the allowlist, escalation to owner powers, and malformed grants.

Every rule is tried on both session paths: a user operation signed by the session key and
self-bundled through the real EntryPoint v0.8 (``handleOps``), and a direct transaction sent by the
session key. A refusal must raise the contract's typed custom error and leave the chain untouched
(target counters and balances, the session's use counter, nonces). On the direct path refusals raise
at gas estimation (nothing is sent); on the user-op path an execution refusal fails the op inside a
mined bundle (``UserOpResult.success`` False, ``raise_for_failure`` raises the decoded error).
"""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from web3.logs import DISCARD

from smartkeys.account import Call, account_contract, session_status
from smartkeys.deployments import ENTRY_POINT_V08
from smartkeys.encoding import nonce_key_for
from smartkeys.errors import decode_revert, get_error_class
from smartkeys.policy_codec import Permission, PermissionMode, SessionPolicy, TokenCap
from smartkeys.tx import send_transaction
from smartkeys.userop import PackedUserOperation, sign_user_op

DIRECT = "direct"
USER_OP = "user_op"
PATHS = (USER_OP, DIRECT)

ZERO = "0x0000000000000000000000000000000000000000"
ONE_DAY = 86_400
CALL_GAS = 600_000  # explicit, so an op whose execution reverts still gets into a bundle
BUNDLE_GAS = 3_000_000  # explicit for bundles whose ops pass validation (skips a slow exact estimate)
ERC1271_MAGIC = bytes.fromhex("1626ba7e")

PING = "ping(uint256)"
MULTICALL_SELECTOR = keccak(text="multicall(bytes[])")[:4]


def err(name):
    return get_error_class(name)


def hexb(data):
    """web3's encode_abi returns 0x-hex text; the ABI wants bytes."""
    return bytes.fromhex(data[2:]) if isinstance(data, str) else bytes(data)


# --------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture
def target(deploy):
    return deploy("test/MockTarget")


@pytest.fixture
def other_target(deploy):
    return deploy("test/MockTarget")


@pytest.fixture
def key(session_key, fund):
    """The session key, funded so it can send direct transactions."""
    fund(session_key.address)
    return session_key


def use(path, agent, calls, bundler):
    """One session use on ``path``; raises the decoded refusal."""
    if path == DIRECT:
        return agent.send_direct(calls)
    op = agent.sign_user_op(agent.build_user_op(calls, call_gas_limit=CALL_GAS))
    (result,) = agent.entry_point.handle_ops([op], bundler, gas=BUNDLE_GAS)
    if not result.success:
        assert result.revert is not None, "a failed op must carry its decoded revert"
    return result.raise_for_failure()


def uses(chain, agent):
    return session_status(chain.w3, agent.account, agent.session_id)["uses"]


def ping(target, x=1):
    return Call(target.address, 0, target.encode_abi("ping", [x]))


def counter(target):
    return target.functions.counter().call()


def grant_bytes(owner, policy_bytes):
    """Grant raw policy bytes through the owner's own ``execute`` (self-call: owner authority)."""
    data = owner.contract.encode_abi("grantSession", [policy_bytes])
    return owner.execute(owner.address, 0, data)


def assert_not_granted(chain, owner, policy_bytes):
    live, uses_, native, gas, epoch = owner.contract.functions.sessionStatus(keccak(policy_bytes)).call()
    assert (live, uses_, native, gas, epoch) == (False, 0, 0, 0, 0)


# --------------------------------------------------------------------------- allowlist


@pytest.mark.parametrize("path", PATHS)
def test_exact_permission_allows_its_selector_on_both_paths(chain, bundler, key, grant, target, path):
    agent = grant(key, permissions=(Permission(target.address, PING),), max_uses=10)

    use(path, agent, [ping(target, 7)], bundler)

    assert counter(target) == 7
    assert uses(chain, agent) == 1


@pytest.mark.parametrize("path", PATHS)
def test_other_selector_on_allowed_target_is_refused_with_call_not_allowed(
    chain, bundler, key, grant, target, path
):
    agent = grant(key, permissions=(Permission(target.address, PING),), max_uses=10)
    call = Call(target.address, 0, target.encode_abi("other", []))

    with pytest.raises(err("CallNotAllowed")) as info:
        use(path, agent, [call], bundler)

    assert info.value.target == target.address
    assert info.value.selector_ == keccak(text="other()")[:4]
    assert uses(chain, agent) == 0


@pytest.mark.parametrize("path", PATHS)
def test_allowed_selector_on_other_target_is_refused_with_call_not_allowed(
    chain, bundler, key, grant, target, other_target, path
):
    agent = grant(key, permissions=(Permission(target.address, PING),), max_uses=10)

    with pytest.raises(err("CallNotAllowed")) as info:
        use(path, agent, [ping(other_target, 5)], bundler)

    assert info.value.target == other_target.address
    assert info.value.selector_ == keccak(text=PING)[:4]
    assert counter(other_target) == 0
    assert counter(target) == 0
    assert uses(chain, agent) == 0


@pytest.mark.parametrize("path", PATHS)
def test_refused_call_in_a_batch_stops_the_allowed_calls_before_it(chain, bundler, key, grant, target, path):
    agent = grant(key, permissions=(Permission(target.address, PING),), max_uses=10)
    calls = [ping(target, 3), Call(target.address, 0, target.encode_abi("other", []))]

    with pytest.raises(err("CallNotAllowed")):
        use(path, agent, calls, bundler)

    assert counter(target) == 0
    assert uses(chain, agent) == 0


@pytest.mark.parametrize("path", PATHS)
def test_any_selector_permission_allows_any_function_on_both_paths(chain, bundler, key, grant, target, path):
    agent = grant(
        key, permissions=(Permission(target.address, mode=PermissionMode.ANY_SELECTOR),), max_uses=10
    )
    calls = [ping(target, 2), Call(target.address, 0, target.encode_abi("other", []))]

    use(path, agent, calls, bundler)

    assert counter(target) == 2
    assert uses(chain, agent) == 1


@pytest.mark.parametrize("path", PATHS)
def test_any_selector_permission_refuses_multicall_with_call_not_allowed(
    chain, bundler, key, grant, target, path
):
    agent = grant(
        key, permissions=(Permission(target.address, mode=PermissionMode.ANY_SELECTOR),), max_uses=10
    )
    inner = hexb(target.encode_abi("ping", [9]))
    call = Call(target.address, 0, target.encode_abi("multicall", [[inner]]))

    with pytest.raises(err("CallNotAllowed")) as info:
        use(path, agent, [call], bundler)

    assert info.value.target == target.address
    assert info.value.selector_ == MULTICALL_SELECTOR
    assert counter(target) == 0
    assert uses(chain, agent) == 0


@pytest.mark.parametrize(
    "signature",
    ["multicall(bytes[])", "multicall(uint256,bytes[])", "aggregate3((address,bool,bytes)[])",
     "execute(bytes32,bytes)", "executeBatch((address,uint256,bytes)[])"],
)
def test_grant_with_exact_multicall_selector_is_refused_with_multicall_not_allowed(
    chain, owner, session_key, target, signature
):
    policy = SessionPolicy(
        key=session_key.address, valid_after=0, valid_until=chain.time() + ONE_DAY,
        permissions=(Permission(target.address, signature),),
    )

    with pytest.raises(err("MulticallNotAllowed")) as info:
        owner.grant(policy)

    assert info.value.target == target.address
    assert info.value.selector_ == keccak(text=signature)[:4]
    assert_not_granted(chain, owner, policy.encode())


@pytest.mark.parametrize("mode", [PermissionMode.ANY_SELECTOR, PermissionMode.EMPTY_CALLDATA])
@pytest.mark.parametrize("path", PATHS)
def test_empty_calldata_is_allowed_with_any_selector_or_empty_calldata_mode(
    chain, bundler, key, grant, target, mode, path
):
    agent = grant(
        key, permissions=(Permission(target.address, mode=mode),),
        native_per_call=10**15, native_total=10**15, max_uses=10,
    )
    before = chain.w3.eth.get_balance(target.address)

    use(path, agent, [Call(target.address, 1234, b"")], bundler)

    assert chain.w3.eth.get_balance(target.address) == before + 1234
    assert session_status(chain.w3, agent.account, agent.session_id)["native_spent"] == 1234


@pytest.mark.parametrize("path", PATHS)
def test_empty_calldata_with_only_an_exact_permission_is_refused_with_call_not_allowed(
    chain, bundler, key, grant, target, path
):
    agent = grant(
        key, permissions=(Permission(target.address, PING),),
        native_per_call=10**15, native_total=10**15, max_uses=10,
    )
    before = chain.w3.eth.get_balance(target.address)

    with pytest.raises(err("CallNotAllowed")) as info:
        use(path, agent, [Call(target.address, 1234, b"")], bundler)

    assert info.value.target == target.address
    assert info.value.selector_ == b"\x00" * 4
    assert chain.w3.eth.get_balance(target.address) == before
    status = session_status(chain.w3, agent.account, agent.session_id)
    assert (status["uses"], status["native_spent"]) == (0, 0)


@pytest.mark.parametrize("path", PATHS)
def test_empty_calldata_mode_refuses_a_function_call_with_call_not_allowed(
    chain, bundler, key, grant, target, path
):
    agent = grant(key, permissions=(Permission(target.address, mode=PermissionMode.EMPTY_CALLDATA),), max_uses=10)

    with pytest.raises(err("CallNotAllowed")) as info:
        use(path, agent, [ping(target, 1)], bundler)

    assert info.value.selector_ == keccak(text=PING)[:4]
    assert counter(target) == 0
    assert uses(chain, agent) == 0


@pytest.mark.parametrize("length", [1, 2, 3])
@pytest.mark.parametrize("path", PATHS)
def test_calldata_of_one_to_three_bytes_is_refused_with_calldata_too_short(
    chain, bundler, key, grant, target, length, path
):
    # every mode is granted on the target: short calldata must not slip through any of them
    agent = grant(
        key,
        permissions=(
            Permission(target.address, mode=PermissionMode.ANY_SELECTOR),
            Permission(target.address, mode=PermissionMode.EMPTY_CALLDATA),
            Permission(target.address, "0x00000000"),
        ),
        native_per_call=10**15, native_total=10**15, max_uses=10,
    )
    before = chain.w3.eth.get_balance(target.address)

    with pytest.raises(err("CalldataTooShort")) as info:
        use(path, agent, [Call(target.address, 1, b"\x00" * length)], bundler)

    assert info.value.target == target.address
    assert info.value.length == length
    assert chain.w3.eth.get_balance(target.address) == before
    assert uses(chain, agent) == 0


# --------------------------------------------------------------------------- escalation


def _forbidden_call(kind, owner, target):
    """A call to a forbidden target, and the address the error must name."""
    if kind == "account":
        data = owner.contract.encode_abi("execute", [target.address, 0, hexb(target.encode_abi("ping", [1]))])
        return Call(owner.address, 0, data), owner.address
    if kind == "entry_point":
        ep = owner.entry_point.contract
        return Call(ENTRY_POINT_V08, 0, ep.encode_abi("incrementNonce", [77])), ENTRY_POINT_V08
    return Call(ZERO, 0, b""), ZERO


@pytest.mark.parametrize("kind", ["account", "entry_point", "zero"])
@pytest.mark.parametrize("path", PATHS)
def test_session_call_to_forbidden_target_is_refused_with_forbidden_target(
    chain, owner, bundler, key, grant, target, kind, path
):
    agent = grant(
        key, permissions=(Permission(target.address, mode=PermissionMode.ANY_SELECTOR),),
        native_per_call=10**15, native_total=10**15, max_uses=10,
    )
    call, forbidden = _forbidden_call(kind, owner, target)
    lane_before = owner.entry_point.get_nonce(owner.address, 77)

    with pytest.raises(err("ForbiddenTarget")) as info:
        use(path, agent, [call], bundler)

    assert info.value.target == forbidden
    assert counter(target) == 0
    assert owner.entry_point.get_nonce(owner.address, 77) == lane_before
    assert uses(chain, agent) == 0


@pytest.mark.parametrize("forbidden", ["account", ENTRY_POINT_V08, ZERO])
@pytest.mark.parametrize("mode", [PermissionMode.EXACT, PermissionMode.ANY_SELECTOR])
def test_grant_naming_forbidden_target_is_refused_with_forbidden_target(
    chain, owner, session_key, forbidden, mode
):
    address = owner.address if forbidden == "account" else forbidden
    permission = Permission(address, PING) if mode is PermissionMode.EXACT else Permission(address, mode=mode)
    policy = SessionPolicy(
        key=session_key.address, valid_after=0, valid_until=chain.time() + ONE_DAY, permissions=(permission,)
    )

    with pytest.raises(err("ForbiddenTarget")) as info:
        owner.grant(policy)

    assert info.value.target == address
    assert_not_granted(chain, owner, policy.encode())


def _nested(kind, owner, agent, target, victim_policy):
    """Calldata the target forwards back into the account, and the error that must come back."""
    c = owner.contract
    if kind == "execute":
        inner = c.encode_abi("execute", [target.address, 0, hexb(target.encode_abi("ping", [1]))])
        return inner, "Unauthorized"
    if kind == "executeBatch":
        inner = c.encode_abi("executeBatch", [[(target.address, 0, hexb(target.encode_abi("ping", [1])))]])
        return inner, "Unauthorized"
    if kind == "grantSession":
        return c.encode_abi("grantSession", [victim_policy.encode()]), "Unauthorized"
    if kind == "revokeSession":
        return c.encode_abi("revokeSession", [agent.session_id]), "Unauthorized"
    # executeAsSession: a nested session use through the target
    return agent.call_data([ping(target, 1)]), "NotSessionKey"


@pytest.mark.parametrize("kind", ["execute", "executeBatch", "grantSession", "revokeSession", "executeAsSession"])
@pytest.mark.parametrize("path", PATHS)
def test_nested_call_back_into_account_through_a_target_is_refused(
    chain, owner, bundler, key, grant, target, kind, path
):
    agent = grant(
        key,
        permissions=(Permission(target.address, "callBack(address,bytes)"), Permission(target.address, PING)),
        max_uses=10,
    )
    victim = SessionPolicy(
        key=Account.create().address, valid_after=0, valid_until=chain.time() + ONE_DAY,
        permissions=(Permission(target.address, mode=PermissionMode.ANY_SELECTOR),),
    )
    inner, expected = _nested(kind, owner, agent, target, victim)
    call = Call(target.address, 0, target.encode_abi("callBack", [owner.address, hexb(inner)]))

    with pytest.raises(err(expected)) as info:
        use(path, agent, [call], bundler)

    if expected == "Unauthorized":
        assert info.value.caller == target.address
    else:
        assert (info.value.caller, info.value.key) == (target.address, key.address)
    assert counter(target) == 0
    assert uses(chain, agent) == 0
    assert session_status(chain.w3, owner.address, agent.session_id)["live"] is True
    assert session_status(chain.w3, owner.address, victim.session_id)["live"] is False


def test_nested_session_user_op_started_during_a_direct_session_use_fails_with_session_reentered(
    chain, owner, bundler, key, grant, target
):
    """A direct use makes the target call EntryPoint.handleOps with another op of the same session:
    the inner op validates, but its execution hits the session lock."""
    agent = grant(
        key,
        permissions=(Permission(target.address, "callBack(address,bytes)"), Permission(target.address, PING)),
        max_uses=10,
    )
    inner_op = agent.sign_user_op(agent.build_user_op([ping(target, 5)], call_gas_limit=CALL_GAS))
    handle_ops = agent.entry_point.contract.encode_abi("handleOps", [[inner_op.to_abi_tuple()], bundler.address])
    call = Call(target.address, 0, target.encode_abi("callBack", [ENTRY_POINT_V08, hexb(handle_ops)]))

    receipt = agent.send_direct([call])

    events = agent.entry_point.contract.events
    (executed,) = events.UserOperationEvent().process_receipt(receipt, errors=DISCARD)
    (reason,) = events.UserOperationRevertReason().process_receipt(receipt, errors=DISCARD)
    assert executed["args"]["success"] is False
    assert isinstance(decode_revert(reason["args"]["revertReason"]), err("SessionReentered"))
    assert counter(target) == 0
    assert uses(chain, agent) == 1  # only the outer direct use counted


def test_nested_handle_ops_inside_a_session_user_op_is_refused_and_runs_nothing(
    chain, owner, bundler, key, grant, target
):
    """The user-op variant of the nested use: the EntryPoint's own reentrancy guard stops the inner
    handleOps, the revert bubbles through the target and fails the outer op."""
    agent = grant(
        key,
        permissions=(Permission(target.address, "callBack(address,bytes)"), Permission(target.address, PING)),
        max_uses=10,
    )
    next_nonce = agent.entry_point.get_nonce(owner.address, agent.nonce_key) + 1  # after the outer op
    inner_op = agent.sign_user_op(agent.build_user_op([ping(target, 5)], call_gas_limit=CALL_GAS, nonce=next_nonce))
    handle_ops = agent.entry_point.contract.encode_abi("handleOps", [[inner_op.to_abi_tuple()], bundler.address])
    call = Call(target.address, 0, target.encode_abi("callBack", [ENTRY_POINT_V08, hexb(handle_ops)]))

    with pytest.raises(err("ReentrancyGuardReentrantCall")):
        use(USER_OP, agent, [call], bundler)

    assert counter(target) == 0
    assert uses(chain, agent) == 0
    assert agent.entry_point.get_nonce(owner.address, agent.nonce_key) == next_nonce  # only the outer op's


@pytest.mark.parametrize("function", ["execute", "executeBatch", "grantSession", "revokeSession", "revokeAllSessions"])
def test_session_key_calling_owner_function_directly_is_refused_with_unauthorized(
    chain, owner, key, grant, target, function
):
    agent = grant(key, permissions=(Permission(target.address, PING),))
    c = owner.contract
    args = {
        "execute": [target.address, 0, hexb(target.encode_abi("ping", [1]))],
        "executeBatch": [[(target.address, 0, hexb(target.encode_abi("ping", [1])))]],
        "grantSession": [SessionPolicy(
            key=key.address, valid_after=0, valid_until=chain.time() + ONE_DAY,
            permissions=(Permission(target.address, mode=PermissionMode.ANY_SELECTOR),), salt=1,
        ).encode()],
        "revokeSession": [agent.session_id],
        "revokeAllSessions": [],
    }[function]

    with pytest.raises(err("Unauthorized")) as info:
        send_transaction(chain.w3, key, {"to": owner.address, "data": c.encode_abi(function, args)})

    assert info.value.caller == key.address
    assert counter(target) == 0
    assert c.functions.sessionEpoch().call() == 0
    assert session_status(chain.w3, owner.address, agent.session_id)["live"] is True


@pytest.mark.parametrize("function", ["execute", "executeBatch", "grantSession"])
def test_user_op_with_owner_calldata_signed_by_session_key_is_refused_with_aa24(
    chain, owner, bundler, key, grant, target, function
):
    grant(key, permissions=(Permission(target.address, PING),))  # a live session key, still no owner power
    c = owner.contract
    escalated = SessionPolicy(
        key=key.address, valid_after=0, valid_until=chain.time() + ONE_DAY,
        permissions=(Permission(target.address, mode=PermissionMode.ANY_SELECTOR),), salt=9,
    )
    call_data = {
        "execute": c.encode_abi("execute", [target.address, 0, hexb(target.encode_abi("ping", [1]))]),
        "executeBatch": c.encode_abi("executeBatch", [[(target.address, 0, hexb(target.encode_abi("ping", [1])))]]),
        "grantSession": c.encode_abi("grantSession", [escalated.encode()]),
    }[function]
    lane = nonce_key_for(key.address)
    nonce = owner.entry_point.get_nonce(owner.address, lane)
    fee = 2 * (chain.w3.eth.get_block("latest").get("baseFeePerGas") or 0) + 10**9
    op = PackedUserOperation(
        sender=owner.address, nonce=nonce, call_data=call_data, call_gas_limit=CALL_GAS,
        verification_gas_limit=150_000, pre_verification_gas=50_000,
        max_fee_per_gas=fee, max_priority_fee_per_gas=10**9,
    )
    op = sign_user_op(op, key, ENTRY_POINT_V08, chain.chain_id)

    with pytest.raises(err("FailedOp")) as info:
        owner.entry_point.handle_ops([op], bundler)

    assert info.value.code == "AA24"
    assert counter(target) == 0
    assert owner.entry_point.get_nonce(owner.address, lane) == nonce
    assert session_status(chain.w3, owner.address, escalated.session_id)["live"] is False


def test_session_key_signature_never_passes_erc1271(chain, owner, key, grant, target):
    agent = grant(key, permissions=(Permission(target.address, mode=PermissionMode.ANY_SELECTOR),))
    digest = keccak(b"permit: move all the account's tokens")
    account = account_contract(chain.w3, owner.address)

    by_session = Account.unsafe_sign_hash(digest, key.key).signature
    by_owner = Account.unsafe_sign_hash(digest, chain.accounts[1].key).signature

    assert session_status(chain.w3, owner.address, agent.session_id)["live"] is True
    assert account.functions.isValidSignature(digest, bytes(by_session)).call() == b"\xff\xff\xff\xff"
    assert account.functions.isValidSignature(digest, bytes(by_owner)).call() == ERC1271_MAGIC


# --------------------------------------------------------------------------- malformed grants

TARGET = to_checksum_address("0x" + "0b" * 20)
TOKEN = to_checksum_address("0x" + "c0" * 20)
PAYMASTER = to_checksum_address("0x" + "de" * 20)
PING_SEL = keccak(text=PING)[:4]
MODE_OFFSET = 95 + 24  # mode byte of permission 0 (header 95 bytes, then target 20 + selector 4)


def _policy(chain, key, **fields):
    fields.setdefault("valid_after", 0)
    fields.setdefault("valid_until", chain.time() + ONE_DAY)
    fields.setdefault("permissions", (Permission(TARGET, PING),))
    return SessionPolicy(key=key, **fields)


def _patch(data, offset, value):
    out = bytearray(data)
    out[offset] = value
    return bytes(out)


def _malformed(case, chain, owner, key):
    """(policy bytes, error name, expected fields) for each malformed grant."""
    now = chain.time()
    good = _policy(chain, key).encode()
    if case == "inverted_window":
        return _policy(chain, key, valid_after=now + 200, valid_until=now + 100).encode(), "InvalidWindow", {
            "validAfter": now + 200, "validUntil": now + 100}
    if case == "empty_window":
        return _policy(chain, key, valid_after=now + 100, valid_until=now + 100).encode(), "InvalidWindow", {
            "validAfter": now + 100, "validUntil": now + 100}
    if case == "window_already_ended":
        return _policy(chain, key, valid_until=now - 10).encode(), "WindowAlreadyEnded", {"validUntil": now - 10}
    if case == "zero_key":
        return _policy(chain, ZERO).encode(), "InvalidSessionKey", {"key": ZERO}
    if case == "key_is_account":
        return _policy(chain, owner.address).encode(), "InvalidSessionKey", {"key": owner.address}
    if case == "duplicate_permission":
        p = Permission(TARGET, PING)
        return _policy(chain, key, permissions=(p, Permission(TARGET, "other()"), p)).encode(), \
            "DuplicatePermission", {"target": TARGET, "selector": PING_SEL, "mode": 0}
    if case == "empty_scope":
        return _policy(chain, key, permissions=()).encode(), "EmptyScope", {}
    if case == "mode_3":
        return _patch(good, MODE_OFFSET, 3), "InvalidPermission", {"target": TARGET, "selector": PING_SEL, "mode": 3}
    if case == "selector_with_any_mode":
        return _patch(good, MODE_OFFSET, 1), "InvalidPermission", {"target": TARGET, "selector": PING_SEL, "mode": 1}
    if case == "selector_with_empty_mode":
        return _patch(good, MODE_OFFSET, 2), "InvalidPermission", {"target": TARGET, "selector": PING_SEL, "mode": 2}
    if case == "duplicate_token":
        caps = (TokenCap(TOKEN, 100), TokenCap(TOKEN, 200))
        return _policy(chain, key, token_caps=caps).encode(), "InvalidTokenCap", {"token": TOKEN}
    if case == "zero_token":
        return _policy(chain, key, token_caps=(TokenCap(ZERO, 100),)).encode(), "InvalidTokenCap", {"token": ZERO}
    if case == "token_is_account":
        caps = (TokenCap(owner.address, 100),)
        return _policy(chain, key, token_caps=caps).encode(), "InvalidTokenCap", {"token": owner.address}
    if case == "token_period_without_per_period":
        caps = (TokenCap(TOKEN, 100, period=3600),)
        return _policy(chain, key, token_caps=caps).encode(), "InvalidPeriod", {
            "asset": TOKEN, "period": 3600, "perPeriod": 0}
    if case == "token_per_period_without_period":
        caps = (TokenCap(TOKEN, 100, per_period=10),)
        return _policy(chain, key, token_caps=caps).encode(), "InvalidPeriod", {
            "asset": TOKEN, "period": 0, "perPeriod": 10}
    if case == "native_period_without_per_period":
        return _policy(chain, key, native_total=10, native_period=3600).encode(), "InvalidPeriod", {
            "asset": ZERO, "period": 3600, "perPeriod": 0}
    if case == "zero_paymaster":
        return _policy(chain, key, paymasters=(ZERO,)).encode(), "InvalidPaymaster", {"paymaster": ZERO}
    if case == "duplicate_paymaster":
        return _policy(chain, key, paymasters=(PAYMASTER, PAYMASTER)).encode(), "InvalidPaymaster", {
            "paymaster": PAYMASTER}
    if case == "version_0":
        return _patch(good, 0, 0), "PolicyVersionUnsupported", {"version": 0}
    if case == "version_1":  # the layout before the flags byte
        return _patch(good, 0, 1), "PolicyVersionUnsupported", {"version": 1}
    if case == "version_2":  # the layout before argument rules and rate limits
        return _patch(good, 0, 2), "PolicyVersionUnsupported", {"version": 2}
    if case == "version_4":
        return _patch(good, 0, 4), "PolicyVersionUnsupported", {"version": 4}
    if case == "unknown_flag":
        return _patch(good, 93, 8), "PolicyMalformed", {"offset": 93}  # bits 0-2 are flags; 3 is not
    if case == "truncated":
        return good[:-1], "PolicyMalformed", {}
    if case == "trailing_byte":
        return good + b"\x00", "PolicyMalformed", {"offset": len(good) + 1}
    if case == "shorter_than_header":
        return good[:50], "PolicyMalformed", {"offset": 50}
    if case == "too_many_permissions":
        return _patch(good, 94, 33), "PolicyMalformed", {"offset": 94}
    raise AssertionError(case)


MALFORMED = [
    "inverted_window", "empty_window", "window_already_ended", "zero_key", "key_is_account",
    "duplicate_permission", "empty_scope", "mode_3", "selector_with_any_mode", "selector_with_empty_mode",
    "duplicate_token", "zero_token", "token_is_account", "token_period_without_per_period",
    "token_per_period_without_period", "native_period_without_per_period", "zero_paymaster",
    "duplicate_paymaster", "version_0", "version_1", "version_2", "version_4", "unknown_flag", "truncated", "trailing_byte", "shorter_than_header",
    "too_many_permissions",
]


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_grant_is_refused_with_its_error_and_grants_nothing(chain, owner, session_key, case):
    policy_bytes, name, fields = _malformed(case, chain, owner, session_key.address)

    with pytest.raises(err(name)) as info:
        grant_bytes(owner, policy_bytes)

    for field, value in fields.items():
        assert info.value.args[field] == value, field
    assert_not_granted(chain, owner, policy_bytes)


def test_well_formed_base_policy_of_the_malformed_cases_is_granted(chain, owner, session_key):
    """Control for the malformed cases: the unpatched policy they start from is accepted."""
    good = _policy(chain, session_key.address, token_caps=(TokenCap(TOKEN, 100),), paymasters=(PAYMASTER,)).encode()

    grant_bytes(owner, good)

    assert owner.contract.functions.sessionStatus(keccak(good)).call()[0] is True
