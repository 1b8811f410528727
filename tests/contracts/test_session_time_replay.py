"""SmartKeysAccount sessions over time and against replay: window boundaries, use limits, revocation
(also inside one bundle), several ops of one key in a bundle, nonce / chain / account binding,
signature malleability, the validationData handed to the EntryPoint, and policy tampering.

Both session paths are exercised where a rule applies to both: a user operation signed by the
session key and self-bundled through the real EntryPoint v0.8, and a direct transaction sent by the
session key.

Timing note: the embedded chain estimates gas on a pending header whose timestamp is
``latest + 1`` (it ignores ``set_next_block_timestamp``). :func:`next_block_at` therefore mines a
block at ``ts - 1`` first, so that both the estimate (where direct refusals and AAxx validation
failures are raised) and the mined block run at exactly ``ts``.
"""

from __future__ import annotations

import dataclasses

import pytest
from eth_account import Account
from eth_utils import keccak

from smartkeys.account import Call, Owner, SessionAgent, account_contract, session_status
from smartkeys.authorization import SECP256K1_N
from smartkeys.deployments import ENTRY_POINT_V08
from smartkeys.encoding import ZERO_ADDRESS, nonce_key_for, unpack_validation_data
from smartkeys.entrypoint import EntryPoint
from smartkeys.errors import get_error_class
from smartkeys.policy_codec import Permission, SessionPolicy, TokenCap
from smartkeys.tx import send_transaction
from smartkeys.userop import PackedUserOperation, sign_user_op

DIRECT = "direct"
USER_OP = "user_op"
PATHS = (USER_OP, DIRECT)

CALL_GAS = 600_000  # explicit, so an op whose execution reverts still gets into a bundle
BUNDLE_GAS = 4_000_000  # explicit for bundles whose ops pass validation (skips a slow exact estimate)
PING = "ping(uint256)"
TRANSFER = "transfer(address,uint256)"
MASK48 = 2**48 - 1


def err(name):
    return get_error_class(name)


# --------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture
def target(deploy):
    return deploy("test/MockTarget")


@pytest.fixture
def key(session_key, fund):
    """The session key, funded so it can send direct transactions."""
    fund(session_key.address)
    return session_key


@pytest.fixture
def recipient(chain):
    return chain.accounts[9].address


def ping(target, x=1):
    return Call(target.address, 0, target.encode_abi("ping", [x]))


def transfer(token, to, amount):
    return Call(token.address, 0, token.encode_abi("transfer", [to, amount]))


def counter(target):
    return target.functions.counter().call()


def status(chain, agent):
    return session_status(chain.w3, agent.account, agent.session_id)


def signed_op(agent, calls, nonce=None):
    return agent.sign_user_op(agent.build_user_op(calls, call_gas_limit=CALL_GAS, nonce=nonce))


def use(path, agent, calls, bundler):
    """One session use on ``path`` that passes validation; returns the receipt (direct) or result.

    Execution refusals raise the decoded custom error on both paths.
    """
    if path == DIRECT:
        return agent.send_direct(calls)
    (result,) = agent.entry_point.handle_ops([signed_op(agent, calls)], bundler, gas=BUNDLE_GAS)
    if not result.success:
        assert result.revert is not None, "a failed op must carry its decoded revert"
    return result.raise_for_failure()


def block_timestamp(chain, receipt_or_result):
    if isinstance(receipt_or_result, dict) or hasattr(receipt_or_result, "blockNumber"):
        number = receipt_or_result["blockNumber"]
    else:
        number = chain.w3.eth.get_transaction_receipt(receipt_or_result.transaction_hash)["blockNumber"]
    return chain.w3.eth.get_block(number)["timestamp"]


def next_block_at(chain, ts):
    """Make the next estimate and the next mined block both run at exactly ``ts``."""
    chain.set_next_block_timestamp(ts - 1)
    chain.mine()
    chain.set_next_block_timestamp(ts)


def validate_call(chain, account, op):
    """``validateUserOp`` as the EntryPoint calls it (eth_call from its address): the returned uint256.

    The embedded chain refuses an eth_call with gas price 0 below the base fee and makes the caller afford
    the gas, so the EntryPoint address is given some ether first (its receive() books it as a deposit of
    the sender; the test's snapshot is reverted afterwards).
    """
    if chain.w3.eth.get_balance(ENTRY_POINT_V08) < 10**18:
        chain.send({"to": ENTRY_POINT_V08, "value": 10**18}, chain.accounts[7])
    op_hash = EntryPoint(chain.w3).get_user_op_hash(op)
    contract = account_contract(chain.w3, account)
    return contract.functions.validateUserOp(op.to_abi_tuple(), op_hash, 0).call(
        {"from": ENTRY_POINT_V08}
    )


# --------------------------------------------------------------------------- window boundaries


@pytest.fixture
def windowed(chain, key, grant, target):
    """A session valid in (now + 1000, now + 2000]."""
    now = chain.time()
    return grant(key, valid_after=now + 1000, valid_until=now + 2000, permissions=(Permission(target.address, PING),),
                 max_uses=10)


@pytest.mark.parametrize("path", PATHS)
def test_use_at_valid_after_is_refused_on_both_paths(chain, bundler, windowed, target, path):
    va = windowed.policy.valid_after
    next_block_at(chain, va)

    if path == DIRECT:
        with pytest.raises(err("SessionNotYetValid")) as info:
            windowed.send_direct([ping(target)])
        assert (info.value.validAfter, info.value.timestamp) == (va, va)
    else:
        op = signed_op(windowed, [ping(target)])
        with pytest.raises(err("FailedOp")) as info:
            windowed.entry_point.handle_ops([op], bundler)
        assert info.value.code == "AA22"
        assert info.value.reason == "AA22 expired or not due"

    assert chain.time() == va - 1  # nothing was mined
    assert counter(target) == 0
    assert status(chain, windowed)["uses"] == 0


@pytest.mark.parametrize("path", PATHS)
def test_use_at_valid_after_plus_one_is_allowed_on_both_paths(chain, bundler, windowed, target, path):
    va = windowed.policy.valid_after
    next_block_at(chain, va + 1)

    outcome = use(path, windowed, [ping(target)], bundler)

    assert block_timestamp(chain, outcome) == va + 1
    assert counter(target) == 1
    assert status(chain, windowed)["uses"] == 1


@pytest.mark.parametrize("path", PATHS)
def test_use_at_valid_until_is_allowed_on_both_paths(chain, bundler, windowed, target, path):
    vu = windowed.policy.valid_until
    next_block_at(chain, vu)

    outcome = use(path, windowed, [ping(target)], bundler)

    assert block_timestamp(chain, outcome) == vu
    assert counter(target) == 1
    assert status(chain, windowed)["uses"] == 1


@pytest.mark.parametrize("path", PATHS)
def test_use_at_valid_until_plus_one_is_refused_on_both_paths(chain, bundler, windowed, target, path):
    vu = windowed.policy.valid_until
    next_block_at(chain, vu + 1)

    if path == DIRECT:
        with pytest.raises(err("SessionExpired")) as info:
            windowed.send_direct([ping(target)])
        assert (info.value.validUntil, info.value.timestamp) == (vu, vu + 1)
    else:
        op = signed_op(windowed, [ping(target)])
        with pytest.raises(err("FailedOp")) as info:
            windowed.entry_point.handle_ops([op], bundler)
        assert info.value.code == "AA22"
        assert info.value.reason == "AA22 expired or not due"

    assert chain.time() == vu  # nothing was mined
    assert counter(target) == 0
    assert status(chain, windowed)["uses"] == 0


# --------------------------------------------------------------------------- max uses


@pytest.mark.parametrize("path", PATHS)
def test_use_after_max_uses_is_refused_with_usage_limit_reached_on_both_paths(
    chain, bundler, key, grant, target, path
):
    agent = grant(key, permissions=(Permission(target.address, PING),), max_uses=2)
    use(path, agent, [ping(target)], bundler)
    use(path, agent, [ping(target)], bundler)  # the last allowed use
    assert (counter(target), status(chain, agent)["uses"]) == (2, 2)

    with pytest.raises(err("UsageLimitReached")) as info:
        use(path, agent, [ping(target)], bundler)

    assert info.value.maxUses == 2
    assert (counter(target), status(chain, agent)["uses"]) == (2, 2)


# --------------------------------------------------------------------------- revocation


def _refuse_validation(agent, calls, bundler):
    """Submit a session op expected to fail validation; return the FailedOp(WithRevert)."""
    return _refuse_validation_of(signed_op(agent, calls), agent, bundler)


def _refuse_validation_of(op, agent, bundler):
    with pytest.raises(err("FailedOp")) as info:
        agent.entry_point.handle_ops([op], bundler)
    return info.value


@pytest.mark.parametrize(
    ("revoke", "error"), [("revoke", "SessionNotActive"), ("revoke_all", "SessionEpochRevoked")]
)
@pytest.mark.parametrize("path", PATHS)
def test_use_after_revoke_is_refused_on_both_paths(chain, owner, bundler, key, grant, target, revoke, error, path):
    agent = grant(key, permissions=(Permission(target.address, PING),), max_uses=10)
    use(path, agent, [ping(target)], bundler)
    if revoke == "revoke":
        owner.revoke(agent.session_id)
    else:
        owner.revoke_all()

    if path == DIRECT:
        with pytest.raises(err(error)) as info:
            agent.send_direct([ping(target)])
        refusal = info.value
    else:
        failed = _refuse_validation(agent, [ping(target)], bundler)
        assert failed.code == "AA23"
        refusal = failed.inner
        assert isinstance(refusal, err(error))

    assert refusal.sessionId == agent.session_id
    if error == "SessionEpochRevoked":
        assert (refusal.grantedEpoch, refusal.currentEpoch) == (0, 1)
    assert counter(target) == 1
    assert status(chain, agent)["live"] is False


@pytest.mark.parametrize("revoke", ["revoke", "revoke_all"])
@pytest.mark.parametrize("path", PATHS)
def test_regrant_after_revoke_is_refused_and_a_new_salt_gives_a_new_session_with_its_own_budgets(
    chain, owner, bundler, key, grant, token, recipient, revoke, path
):
    agent = grant(
        key, permissions=(Permission(token.address, TRANSFER),), token_caps=(TokenCap(token.address, 100),), max_uses=1
    )
    start = token.functions.balanceOf(recipient).call()
    use(path, agent, [transfer(token, recipient, 100)], bundler)  # the whole budget: one use, full cap
    stale_op = signed_op(agent, [transfer(token, recipient, 100)])  # signed for the old grant, never sent
    owner.revoke(agent.session_id) if revoke == "revoke" else owner.revoke_all()
    revoked = status(chain, agent)

    with pytest.raises(err("SessionAlreadyGranted")) as info:
        owner.grant(agent.policy)  # the same policy again: the id is used for good
    assert info.value.sessionId == agent.session_id
    assert status(chain, agent) == revoked
    assert owner.contract.functions.sessionLedger(agent.session_id, token.address).call()[0] == 100

    salt = owner.next_free_salt(agent.policy)
    assert salt == 1
    fresh_policy = dataclasses.replace(agent.policy, salt=salt)
    owner.grant(fresh_policy)
    fresh_agent = SessionAgent(chain.w3, owner.address, key, fresh_policy)
    fresh = status(chain, fresh_agent)
    assert (fresh["live"], fresh["uses"], fresh["native_spent"]) == (True, 0, 0)
    assert fresh_agent.session_id != agent.session_id
    # Nothing signed for the old grant is valid for the new one: the old op names the old (dead) policy.
    failed = _refuse_validation_of(stale_op, agent, bundler)
    assert failed.code == "AA23"
    assert token.functions.balanceOf(recipient).call() == start + 100
    use(path, fresh_agent, [transfer(token, recipient, 100)], bundler)
    assert token.functions.balanceOf(recipient).call() == start + 200
    assert status(chain, fresh_agent)["uses"] == 1
    assert status(chain, agent) == revoked


def _owner_op(owner, function, args):
    data = owner.contract.encode_abi(function, args)
    return owner.sign_user_op(owner.build_user_op([Call(owner.address, 0, data)], call_gas_limit=CALL_GAS))


@pytest.mark.parametrize(
    ("function", "error"), [("revokeSession", "SessionNotActive"), ("revokeAllSessions", "SessionEpochRevoked")]
)
def test_revoke_op_before_session_op_in_one_bundle_stops_the_session_op(
    chain, owner, bundler, key, grant, target, function, error
):
    agent = grant(key, permissions=(Permission(target.address, PING),), max_uses=10)
    session_op = signed_op(agent, [ping(target)])
    revoke_op = _owner_op(owner, function, [agent.session_id] if function == "revokeSession" else [])
    assert revoke_op.nonce >> 64 == 0 and session_op.nonce >> 64 == nonce_key_for(key.address)

    revoked, used = owner.entry_point.handle_ops([revoke_op, session_op], bundler, gas=BUNDLE_GAS)

    assert revoked.success is True
    assert used.success is False
    assert isinstance(used.revert, err(error))
    assert used.revert.sessionId == agent.session_id
    assert counter(target) == 0
    assert status(chain, agent)["live"] is False


def test_revoke_op_after_session_op_in_one_bundle_lets_the_earlier_op_run(
    chain, owner, bundler, key, grant, target
):
    """Control for the test above: order within the bundle is what decides."""
    agent = grant(key, permissions=(Permission(target.address, PING),), max_uses=10)
    session_op = signed_op(agent, [ping(target)])
    revoke_op = _owner_op(owner, "revokeSession", [agent.session_id])

    used, revoked = owner.entry_point.handle_ops([session_op, revoke_op], bundler, gas=BUNDLE_GAS)

    assert (used.success, revoked.success) == (True, True)
    assert counter(target) == 1
    assert status(chain, agent)["live"] is False


# --------------------------------------------------------------------------- two ops of one key in a bundle


def test_two_ops_of_one_key_in_one_bundle_both_run_and_both_are_charged(
    chain, owner, bundler, key, grant, token, recipient
):
    agent = grant(
        key, permissions=(Permission(token.address, TRANSFER),), token_caps=(TokenCap(token.address, 1000),)
    )
    start = token.functions.balanceOf(recipient).call()
    nonce = agent.entry_point.get_nonce(owner.address, agent.nonce_key)
    first = signed_op(agent, [transfer(token, recipient, 300)], nonce=nonce)
    second = signed_op(agent, [transfer(token, recipient, 200)], nonce=nonce + 1)

    results = agent.entry_point.handle_ops([first, second], bundler, gas=BUNDLE_GAS)

    assert [r.success for r in results] == [True, True]
    assert token.functions.balanceOf(recipient).call() == start + 500
    assert owner.contract.functions.sessionLedger(agent.session_id, token.address).call()[0] == 500
    assert agent.entry_point.get_nonce(owner.address, agent.nonce_key) == nonce + 2


@pytest.mark.parametrize("budget", ["token", "uses"])
def test_two_ops_in_one_bundle_with_one_unit_of_budget_left_exactly_one_succeeds(
    chain, owner, bundler, key, grant, token, recipient, budget
):
    if budget == "token":
        agent = grant(
            key, permissions=(Permission(token.address, TRANSFER),), token_caps=(TokenCap(token.address, 100),)
        )
        use(USER_OP, agent, [transfer(token, recipient, 99)], bundler)
    else:
        agent = grant(key, permissions=(Permission(token.address, TRANSFER),),
                      token_caps=(TokenCap(token.address, 10**9),), max_uses=2)
        use(USER_OP, agent, [transfer(token, recipient, 99)], bundler)
    start = token.functions.balanceOf(recipient).call()
    nonce = agent.entry_point.get_nonce(owner.address, agent.nonce_key)
    ops = [signed_op(agent, [transfer(token, recipient, 1)], nonce=nonce + i) for i in range(2)]

    first, second = agent.entry_point.handle_ops(ops, bundler, gas=BUNDLE_GAS)

    assert (first.success, second.success) == (True, False)
    if budget == "token":
        assert isinstance(second.revert, err("TokenSpendCapExceeded"))
        assert (second.revert.spent, second.revert.requested, second.revert.cap) == (100, 1, 100)
        assert owner.contract.functions.sessionLedger(agent.session_id, token.address).call()[0] == 100
    else:
        assert isinstance(second.revert, err("UsageLimitReached"))
        assert status(chain, agent)["uses"] == 2
    assert token.functions.balanceOf(recipient).call() == start + 1


# --------------------------------------------------------------------------- replay


def test_session_op_replayed_after_it_ran_is_refused_with_aa25(chain, owner, bundler, key, grant, target):
    agent = grant(key, permissions=(Permission(target.address, PING),))
    op = signed_op(agent, [ping(target)])
    (result,) = agent.entry_point.handle_ops([op], bundler, gas=BUNDLE_GAS)
    assert result.success is True

    with pytest.raises(err("FailedOp")) as info:
        agent.entry_point.handle_ops([op], bundler)

    assert info.value.code == "AA25"
    assert counter(target) == 1


def test_session_op_signed_for_another_chain_id_is_refused_with_aa24(chain, owner, bundler, key, grant, target):
    agent = grant(key, permissions=(Permission(target.address, PING),))
    unsigned = agent.build_user_op([ping(target)], call_gas_limit=CALL_GAS)
    foreign = sign_user_op(unsigned, key, ENTRY_POINT_V08, chain.chain_id + 1)

    with pytest.raises(err("FailedOp")) as info:
        agent.entry_point.handle_ops([foreign], bundler)

    assert info.value.code == "AA24"
    assert counter(target) == 0
    assert agent.entry_point.get_nonce(owner.address, agent.nonce_key) == unsigned.nonce
    # control: the very same op signed for this chain runs
    (result,) = agent.entry_point.handle_ops([agent.sign_user_op(unsigned)], bundler, gas=BUNDLE_GAS)
    assert result.success is True and counter(target) == 1


def test_session_op_moved_to_another_account_with_the_same_policy_is_refused_with_aa24(
    chain, owner, bundler, key, grant, target
):
    agent = grant(key, permissions=(Permission(target.address, PING),))
    other = Owner(chain.w3, chain.accounts[2])
    other.delegate()
    other.grant(agent.policy)  # account B grants the very same policy to the same key
    assert session_status(chain.w3, other.address, agent.session_id)["live"] is True
    op = signed_op(agent, [ping(target)])
    moved = dataclasses.replace(op, sender=other.address)
    assert moved.signature == op.signature
    assert moved.nonce == agent.entry_point.get_nonce(other.address, agent.nonce_key)  # a valid nonce for B

    with pytest.raises(err("FailedOp")) as info:
        agent.entry_point.handle_ops([moved], bundler)

    assert info.value.code == "AA24"
    assert counter(target) == 0
    assert agent.entry_point.get_nonce(other.address, agent.nonce_key) == moved.nonce
    assert session_status(chain.w3, other.address, agent.session_id)["gas_spent"] == 0


@pytest.mark.parametrize(
    ("revoke", "error"), [("revoke", "SessionNotActive"), ("revoke_all", "SessionEpochRevoked")]
)
def test_signed_session_op_with_fresh_nonce_is_refused_after_revoke(
    chain, owner, bundler, key, grant, target, revoke, error
):
    agent = grant(key, permissions=(Permission(target.address, PING),))
    op = signed_op(agent, [ping(target)])  # signed while the session was live, never sent
    owner.revoke(agent.session_id) if revoke == "revoke" else owner.revoke_all()
    assert op.nonce == agent.entry_point.get_nonce(owner.address, agent.nonce_key)

    with pytest.raises(err("FailedOp")) as info:
        agent.entry_point.handle_ops([op], bundler)

    assert info.value.code == "AA23"
    assert isinstance(info.value.inner, err(error))
    assert counter(target) == 0


# --------------------------------------------------------------------------- signatures


def _high_s(signature):
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    return r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])


def test_high_s_session_signature_is_refused_with_aa24(chain, owner, bundler, key, grant, target):
    agent = grant(key, permissions=(Permission(target.address, PING),))
    op = signed_op(agent, [ping(target)])
    malleable = dataclasses.replace(op, signature=_high_s(op.signature))
    assert malleable.signature != op.signature

    with pytest.raises(err("FailedOp")) as info:
        agent.entry_point.handle_ops([malleable], bundler)

    assert info.value.code == "AA24"
    assert counter(target) == 0
    # control: the low-s original of the same op is accepted
    (result,) = agent.entry_point.handle_ops([op], bundler, gas=BUNDLE_GAS)
    assert result.success is True and counter(target) == 1


def test_session_op_signed_by_a_different_key_is_refused_with_aa24(chain, owner, bundler, key, grant, target):
    agent = grant(key, permissions=(Permission(target.address, PING),))
    unsigned = agent.build_user_op([ping(target)], call_gas_limit=CALL_GAS)
    forged = sign_user_op(unsigned, Account.create(), ENTRY_POINT_V08, chain.chain_id)

    with pytest.raises(err("FailedOp")) as info:
        agent.entry_point.handle_ops([forged], bundler)

    assert info.value.code == "AA24"
    assert counter(target) == 0
    assert status(chain, agent)["gas_spent"] == 0


@pytest.mark.parametrize("bad", ["other_key", "high_s", "zeros", "empty", "short"])
def test_bad_session_signature_makes_validate_user_op_return_sig_failed_not_revert(
    chain, owner, key, grant, target, bad
):
    agent = grant(key, permissions=(Permission(target.address, PING),))
    op = signed_op(agent, [ping(target)])
    signature = {
        "other_key": sign_user_op(op, Account.create(), ENTRY_POINT_V08, chain.chain_id).signature,
        "high_s": _high_s(op.signature),
        "zeros": bytes(65),
        "empty": b"",
        "short": op.signature[:64],
    }[bad]

    validation_data = validate_call(chain, owner.address, dataclasses.replace(op, signature=signature))

    assert validation_data & (2**160 - 1) == 1  # SIG_VALIDATION_FAILED
    assert unpack_validation_data(validation_data).sig_failed is True


def test_owner_shaped_op_signed_by_session_key_makes_validate_user_op_return_exactly_one(
    chain, owner, key, grant, target
):
    grant(key, permissions=(Permission(target.address, PING),))
    fee = 2 * (chain.w3.eth.get_block("latest").get("baseFeePerGas") or 0) + 10**9
    op = PackedUserOperation(
        sender=owner.address, nonce=owner.entry_point.get_nonce(owner.address, nonce_key_for(key.address)),
        call_data=owner.contract.encode_abi("execute", [target.address, 0, b""]), call_gas_limit=CALL_GAS,
        verification_gas_limit=150_000, pre_verification_gas=50_000, max_fee_per_gas=fee, max_priority_fee_per_gas=10**9,
    )
    op = sign_user_op(op, key, ENTRY_POINT_V08, chain.chain_id)

    assert validate_call(chain, owner.address, op) == 1


def test_good_session_op_validation_data_carries_the_window_in_the_entry_point_bit_positions(
    chain, owner, key, grant, target
):
    now = chain.time()
    agent = grant(key, valid_after=now + 10, valid_until=now + 5000, permissions=(Permission(target.address, PING),))
    op = signed_op(agent, [ping(target)])

    validation_data = validate_call(chain, owner.address, op)

    parsed = unpack_validation_data(validation_data)
    assert parsed.sig_failed is False and parsed.aggregator == ZERO_ADDRESS
    assert (parsed.valid_after, parsed.valid_until) == (now + 10, now + 5000)
    assert validation_data & (2**160 - 1) == 0
    assert (validation_data >> 160) & MASK48 == now + 5000
    assert validation_data >> 208 == now + 10


# --------------------------------------------------------------------------- policy tampering


def _tampered(agent, token):
    """The agent's policy with one byte changed: the token cap's top byte (cap becomes huge)."""
    data = bytearray(agent.policy.encode())
    t = 95 + 27 * len(agent.policy.permissions)
    cap_msb = t + 1 + 20
    assert data[t + 1 : t + 21] == bytes.fromhex(token.address[2:])
    data[cap_msb] = 0x01
    return SessionPolicy.decode(bytes(data))


@pytest.mark.parametrize("path", PATHS)
def test_policy_with_one_tampered_byte_is_refused_with_session_not_active_on_both_paths(
    chain, owner, bundler, key, grant, token, recipient, path
):
    agent = grant(key, permissions=(Permission(token.address, TRANSFER),), token_caps=(TokenCap(token.address, 100),))
    forged_policy = _tampered(agent, token)
    assert forged_policy.token_caps[0].cap > 10**30
    forged = SessionAgent(chain.w3, owner.address, key, forged_policy)  # the key signs whatever it likes
    start = token.functions.balanceOf(recipient).call()
    calls = [transfer(token, recipient, 1000)]

    if path == DIRECT:
        with pytest.raises(err("SessionNotActive")) as info:
            forged.send_direct(calls)
        refusal = info.value
    else:
        failed = _refuse_validation(forged, calls, bundler)
        assert failed.code == "AA23"
        refusal = failed.inner
        assert isinstance(refusal, err("SessionNotActive"))

    assert refusal.sessionId == forged_policy.session_id != agent.session_id
    assert token.functions.balanceOf(recipient).call() == start
    assert owner.contract.functions.sessionLedger(agent.session_id, token.address).call()[0] == 0


def test_signed_session_op_with_one_policy_byte_changed_in_call_data_is_refused(
    chain, owner, bundler, key, grant, token, recipient
):
    agent = grant(key, permissions=(Permission(token.address, TRANSFER),), token_caps=(TokenCap(token.address, 100),))
    op = signed_op(agent, [transfer(token, recipient, 1000)])
    policy = agent.policy.encode()
    at = op.call_data.index(policy)
    t = 95 + 27 * len(agent.policy.permissions)
    call_data = bytearray(op.call_data)
    call_data[at + t + 1 + 20] = 0x01  # the token cap's top byte
    tampered = dataclasses.replace(op, call_data=bytes(call_data))
    start = token.functions.balanceOf(recipient).call()

    with pytest.raises(err("FailedOp")) as info:
        agent.entry_point.handle_ops([tampered], bundler)

    assert info.value.code == "AA23"
    assert isinstance(info.value.inner, err("SessionNotActive"))
    assert token.functions.balanceOf(recipient).call() == start


@pytest.mark.parametrize("cut", ["last_byte_dropped", "trailing_zero", "key_only", "empty"])
@pytest.mark.parametrize("path", PATHS)
def test_truncated_or_extended_policy_bytes_are_refused_with_session_not_active_on_both_paths(
    chain, owner, bundler, key, grant, token, recipient, cut, path
):
    """The contract reads policy fields without bounds checks once the policy's hash is a granted session:
    a policy cut short (fields read past its end give zeros) or padded is another hash, so it is refused
    before any field could matter, on both paths, and nothing moves."""
    agent = grant(key, permissions=(Permission(token.address, TRANSFER),), token_caps=(TokenCap(token.address, 100),))
    good = agent.policy.encode()
    policy = {"last_byte_dropped": good[:-1], "trailing_zero": good + b"\x00",
              "key_only": good[:21], "empty": b""}[cut]
    calls = [transfer(token, recipient, 10)]
    data = agent.contract.encode_abi("executeAsSession", [policy, [(c.target, c.value, c.data) for c in calls]])
    start = token.functions.balanceOf(recipient).call()

    if path == DIRECT:
        with pytest.raises(err("SessionNotActive")) as info:
            send_transaction(chain.w3, key, {"to": agent.account, "data": data})
        refusal = info.value
    else:
        op = dataclasses.replace(agent.build_user_op(calls, call_gas_limit=CALL_GAS), call_data=data)
        with pytest.raises(err("FailedOp")) as failed:
            agent.entry_point.handle_ops([agent.sign_user_op(op)], bundler)
        assert failed.value.code == "AA23"
        refusal = failed.value.inner
        if cut == "empty":  # no key in the policy at all: the nonce lane (the key's address) cannot match
            assert isinstance(refusal, err("SessionNonceLaneMismatch"))
            refusal = None
        else:
            assert isinstance(refusal, err("SessionNotActive"))

    if refusal is not None:
        assert bytes(refusal.sessionId) == keccak(policy)
    assert token.functions.balanceOf(recipient).call() == start
    assert owner.contract.functions.sessionLedger(agent.session_id, token.address).call()[0] == 0
