"""Attacks on "a compromised agent cannot move more than its policy allows", one section per kind of bypass.

Each test plays the agent as an attacker holding the session key, on both session paths where the path exists
(``direct``: the key sends ``executeAsSession``; ``user_op``: the key signs a self-bundled user operation). A
refusal must name the rule with its values (the custom error) and leave everything as it was: balances of the
account and of every party the attack would pay, allowances, the EntryPoint deposit, the session's ledger and
status (see ``Runner.refused`` in test_session_budgets.py).

Kinds (security.md, "caps are what leaves the account"):
1. what leaves is what is charged: fee-on-transfer tokens, ERC-20 calls that return ``false``;
2. functions a cap cannot account for (old allowance functions, operators, permit) are refused;
3. value paid outside the session's execution (a token paymaster's postOp) counts against the gas budget;
4. default deny: no permission may move an uncapped asset without the named flag;
5. (re-grants: test_session_budgets.py and test_session_time_replay.py);
6. sessions do not survive a change of delegation through any SDK path;
7. empty batches are refused.
"""

from __future__ import annotations

import pytest
from test_session_budgets import (  # noqa: F401  (path, run, agent_for, target are fixtures)
    MAX_FEE,
    RECIPIENT,
    TRANSFER,
    agent_for,
    balance_of,
    err,
    fixed_op,
    ledger,
    path,
    run,
    session_used,
    status,
    target,
    tcall,
)

from smartkeys.account import Call
from smartkeys.authorization import authorization_nonce, sign_authorization
from smartkeys.errors import FailedOpWithRevert, register_contract_errors
from smartkeys.localchain import SIMPLE7702_ADDRESS
from smartkeys.policy_codec import Permission, PermissionMode, SessionPolicy, TokenCap, selector_of
from smartkeys.tx import send_transaction

THIEF = "0x000000000000000000000000000000000000dEaD"
FEE_SINK = "0x000000000000000000000000000000000000Fee5"
APPROVE = selector_of("approve(address,uint256)")
TRANSFER_FROM = selector_of("transferFrom(address,address,uint256)")
INCREASE_APPROVAL = selector_of("increaseApproval(address,uint256)")
SET_OPERATOR = selector_of("setOperator(address,bool)")
SET_APPROVAL_FOR_ALL = selector_of("setApprovalForAll(address,bool)")
PERMIT = selector_of("permit(address,address,uint256,uint256,uint8,bytes32,bytes32)")
PING = selector_of("ping(uint256)")
PERMIT2 = "0x000000000022D473030F116dDEE9F6B43aC78BA3"
ANY = PermissionMode.ANY_SELECTOR


def _minted(chain, deploy, owner, name, args=None, amount=10**12):
    contract = deploy(name, args)
    register_contract_errors(contract.abi)
    chain.send({"to": contract.address, "data": contract.encode_abi("mint", [owner.address, amount])},
               chain.accounts[8])
    return contract


@pytest.fixture
def fee_token(chain, deploy, owner):
    """Takes 1% from the sender on top of every transfer."""
    return _minted(chain, deploy, owner, "test/FeeOnTransferToken", [100])


@pytest.fixture
def odd_token(chain, deploy, owner):
    return _minted(chain, deploy, owner, "test/OddReturnToken")


@pytest.fixture
def legacy_token(chain, deploy, owner):
    return _minted(chain, deploy, owner, "test/LegacyAllowanceToken")


def set_mode(chain, token, mode):
    chain.send({"to": token.address, "data": token.encode_abi("setMode", [mode])}, chain.accounts[8])


def allowance(token, owner_address, spender):
    return lambda: token.functions.allowance(owner_address, spender).call()


def grant_refused(owner, policy, error):
    """Grant through the SDK and through a raw transaction: both refused with ``error``; nothing granted."""
    with pytest.raises(err(error)) as info:
        owner.grant(policy)
    with pytest.raises(err(error)):
        send_transaction(owner.w3, owner._account, {
            "to": owner.address, "data": owner.contract.encode_abi("grantSession", [policy.encode()])})
    assert not owner.session_id_used(policy.session_id)
    return info.value


# =========================================================================== 1. what leaves is what is charged


def test_fee_on_transfer_is_charged_what_left_the_account_not_what_was_declared(run, agent_for, fee_token):
    agent = agent_for(permissions=(Permission(fee_token.address, TRANSFER),),
                      token_caps=(TokenCap(fee_token.address, 1_000),))
    before = fee_token.functions.balanceOf(agent.account).call()
    receipt = run(agent, [tcall(fee_token, "transfer", RECIPIENT, 500)])
    assert before - fee_token.functions.balanceOf(agent.account).call() == 505  # 500 + 1% fee
    assert ledger(agent, fee_token.address)[0] == 505
    assert session_used(agent, receipt)[0]["tokens"] == {fee_token.address: 505}


def test_fee_on_transfer_that_fits_as_declared_but_not_as_measured_is_refused(run, agent_for, fee_token):
    """cap 1,000; transfer(995) declares 995 (fits) but takes 1,004 (does not): refused, nothing moves."""
    agent = agent_for(permissions=(Permission(fee_token.address, TRANSFER),),
                      token_caps=(TokenCap(fee_token.address, 1_000),))
    e = run.refused(agent, [tcall(fee_token, "transfer", RECIPIENT, 995)], "TokenSpendCapExceeded", {
        "recipient": balance_of(fee_token, RECIPIENT), "fee_sink": balance_of(fee_token, FEE_SINK)})
    assert (e.token, e.spent, e.requested, e.cap) == (fee_token.address, 0, 1_004, 1_000)


def test_fee_on_transfer_through_transfer_from_of_the_accounts_own_balance_is_measured(run, agent_for, fee_token):
    agent = agent_for(permissions=(Permission(fee_token.address, TRANSFER_FROM), Permission(fee_token.address,
                                                                                            APPROVE)),
                      token_caps=(TokenCap(fee_token.address, 2_000),))
    # approve(self, 300) is charged 300 (an allowance is power over the balance), then the pull takes 303.
    run(agent, [tcall(fee_token, "approve", agent.account, 300),
                tcall(fee_token, "transferFrom", agent.account, RECIPIENT, 300)])
    assert ledger(agent, fee_token.address)[0] == 300 + 303


@pytest.mark.parametrize("function", ["transfer", "approve"])
def test_erc20_call_that_returns_false_fails_the_use_and_charges_nothing(
    run, agent_for, chain, odd_token, function
):
    selector = TRANSFER if function == "transfer" else APPROVE
    agent = agent_for(permissions=(Permission(odd_token.address, selector),),
                      token_caps=(TokenCap(odd_token.address, 1_000),), max_uses=5)
    set_mode(chain, odd_token, 1)
    e = run.refused(agent, [tcall(odd_token, function, RECIPIENT, 500)], "TokenCallReturnedFalse", {
        "recipient": balance_of(odd_token, RECIPIENT), "allowance": allowance(odd_token, agent.account, RECIPIENT)})
    assert (e.token, e.selector_) == (odd_token.address, selector)


def test_erc20_call_that_returns_a_word_other_than_true_fails_even_though_it_moved(run, agent_for, chain, odd_token):
    agent = agent_for(permissions=(Permission(odd_token.address, TRANSFER),),
                      token_caps=(TokenCap(odd_token.address, 1_000),))
    set_mode(chain, odd_token, 3)  # moves, then returns 2: not ABI `true`
    e = run.refused(agent, [tcall(odd_token, "transfer", RECIPIENT, 500)], "TokenCallReturnedFalse",
                    {"recipient": balance_of(odd_token, RECIPIENT)})
    assert (e.token, e.selector_) == (odd_token.address, TRANSFER)


def test_erc20_call_that_returns_no_data_is_accepted_and_charged(run, agent_for, chain, odd_token):
    """Control: tokens that predate the bool result (USDT-style) still work, as SafeERC20 accepts them."""
    agent = agent_for(permissions=(Permission(odd_token.address, TRANSFER),),
                      token_caps=(TokenCap(odd_token.address, 1_000),))
    set_mode(chain, odd_token, 2)
    run(agent, [tcall(odd_token, "transfer", RECIPIENT, 500)])
    assert odd_token.functions.balanceOf(RECIPIENT).call() == 500
    assert ledger(agent, odd_token.address)[0] == 500


def test_false_return_on_an_uncapped_token_also_fails_the_use(run, agent_for, chain, odd_token, target):
    """A silent no-op is never reported as done, capped or not (the owner allowed the token uncapped)."""
    agent = agent_for(permissions=(Permission(odd_token.address, TRANSFER), Permission(target.address, PING)),
                      allow_uncapped_assets=True)
    set_mode(chain, odd_token, 1)
    e = run.refused(agent, [Call(target.address, 0, target.encode_abi("ping", [1])),
                            tcall(odd_token, "transfer", RECIPIENT, 500)], "TokenCallReturnedFalse",
                    {"counter": lambda: target.functions.counter().call()})
    assert e.token == odd_token.address


# =========================================================================== 2. functions the cap does not know


@pytest.mark.parametrize(("function", "args", "selector"), [
    ("increaseApproval", [THIEF, 10**24], INCREASE_APPROVAL),
    ("setOperator", [THIEF, True], SET_OPERATOR),
])
def test_any_function_permission_on_a_capped_token_refuses_what_cannot_be_accounted(
    run, agent_for, legacy_token, function, args, selector
):
    """The example of the issue: ``increaseApproval(thief, 10^24)`` would be charged 0 and let the thief pull
    everything later. Any function outside the accountable set is refused at use, with nothing changed."""
    agent = agent_for(permissions=(Permission(legacy_token.address, mode=ANY),),
                      token_caps=(TokenCap(legacy_token.address, 100),))
    e = run.refused(agent, [tcall(legacy_token, function, *args)], "TokenFunctionNotAccountable", {
        "allowance": allowance(legacy_token, agent.account, THIEF),
        "operator": lambda: legacy_token.functions.isOperator(agent.account, THIEF).call()})
    assert (e.token, e.selector_) == (legacy_token.address, selector)


def test_plain_value_transfer_to_a_capped_token_is_refused_at_use(run, agent_for, token, chain):
    """Empty calldata reaches a token's fallback/receive (WETH mints on it): not accountable either."""
    agent = agent_for(permissions=(Permission(token.address, mode=ANY),), token_caps=(TokenCap(token.address, 100),),
                      native_per_call=10, native_total=10)
    e = run.refused(agent, [Call(token.address, 1, b"")], "TokenFunctionNotAccountable")
    assert (e.token, e.selector_) == (token.address, b"\x00" * 4)


@pytest.mark.parametrize(("selector", "mode"), [
    (INCREASE_APPROVAL, PermissionMode.EXACT), (SET_OPERATOR, PermissionMode.EXACT), (PERMIT, PermissionMode.EXACT),
    (None, PermissionMode.EMPTY_CALLDATA),
])
def test_exact_permission_for_an_unaccountable_function_of_a_capped_token_is_refused_at_grant(
    owner, session_key, chain, legacy_token, selector, mode
):
    perm = Permission(legacy_token.address, selector, mode) if selector else Permission(legacy_token.address,
                                                                                          mode=mode)
    policy = SessionPolicy(key=session_key.address, valid_after=0, valid_until=chain.time() + 3_600,
                           permissions=(perm,), token_caps=(TokenCap(legacy_token.address, 100),))
    e = grant_refused(owner, policy, "TokenFunctionNotAccountable")
    assert (e.token, e.selector_) == (legacy_token.address, selector or b"\x00" * 4)


def test_approve_on_a_capped_token_is_charged_in_full_so_a_later_pull_cannot_exceed_the_cap(
    run, agent_for, token, chain
):
    agent = agent_for(permissions=(Permission(token.address, APPROVE),), token_caps=(TokenCap(token.address, 1_000),))
    run(agent, [tcall(token, "approve", THIEF, 600)])
    assert ledger(agent, token.address)[0] == 600
    e = run.refused(agent, [tcall(token, "approve", THIEF, 401)], "TokenSpendCapExceeded",
                    {"allowance": allowance(token, agent.account, THIEF)})
    assert (e.spent, e.requested, e.cap) == (600, 401, 1_000)


def test_permit2_is_never_a_session_target(owner, session_key, chain):
    """An account that approved Permit2 lets any Permit2 caller hand that power on, unmeasured."""
    policy = SessionPolicy(key=session_key.address, valid_after=0, valid_until=chain.time() + 3_600,
                           permissions=(Permission(PERMIT2, mode=ANY),), allow_uncapped_assets=True)
    e = grant_refused(owner, policy, "ForbiddenTarget")
    assert e.target == PERMIT2


@pytest.fixture
def forwarder(deploy, owner, token):
    """A Permit2-shaped contract at a non-canonical address that the owner approved on USDC, long ago."""
    contract = deploy("test/AllowanceForwarder")
    owner.execute(token.address, 0, token.encode_abi("approve", [contract.address, 2**256 - 1]))
    return contract


FWD_APPROVE = selector_of("approve(address,address,uint160,uint48)")


@pytest.mark.parametrize("mode", ["exact", "any"])
def test_a_contract_the_owner_approved_earlier_cannot_be_made_to_hand_on_a_capped_balance(
    run, agent_for, chain, token, forwarder, owner, session_key, mode
):
    """The reviewer's attack: ``forwarder.approve(USDC, thief, 2^160-1, ...)`` moves nothing now (charged 0) and
    lets the thief pull the whole balance later. A call to any contract holding a standing allowance on a capped
    token is refused, at grant and (if the allowance came after the grant) at use, unless the policy names that
    choice (ALLOW_STANDING_ALLOWANCES)."""
    perm = Permission(forwarder.address, FWD_APPROVE) if mode == "exact" else Permission(forwarder.address, mode=ANY)
    fields = dict(key=session_key.address, valid_after=0, valid_until=chain.time() + 3_600, permissions=(perm,),
                  token_caps=(TokenCap(token.address, 100),), gas_budget=10**18)
    e = grant_refused(owner, SessionPolicy(**fields), "StandingAllowance")
    assert (e.token, e.spender, e.amount) == (token.address, forwarder.address, 2**256 - 1)

    # Granted while no allowance stood; the owner approves afterwards: refused at use, on both paths.
    owner.execute(token.address, 0, token.encode_abi("approve", [forwarder.address, 0]))
    agent = agent_for(**{k: v for k, v in fields.items() if k not in ("key", "valid_after", "valid_until")})
    owner.execute(token.address, 0, token.encode_abi("approve", [forwarder.address, 10**12]))
    call = Call(forwarder.address, 0, forwarder.encode_abi("approve", [token.address, THIEF, 2**160 - 1, 2**48 - 1]))
    e = run.refused(agent, [call], "StandingAllowance", {
        "handed_on": lambda: forwarder.functions.allowed(agent.account, token.address, THIEF).call()})
    assert (e.token, e.spender, e.amount) == (token.address, forwarder.address, 10**12)


def test_standing_allowances_by_the_named_flag_are_measured_while_the_session_runs(run, agent_for, token, forwarder,
                                                                                   chain):
    """With the owner's explicit flag the call goes through; a pull during the use is measured and charged."""
    agent = agent_for(permissions=(Permission(forwarder.address, mode=ANY),), token_caps=(TokenCap(token.address, 100),),
                      allow_standing_allowances=True)
    approve = Call(forwarder.address, 0, forwarder.encode_abi("approve", [token.address, forwarder.address, 50, 0]))
    run(agent, [approve])
    assert forwarder.functions.allowed(agent.account, token.address, forwarder.address).call() == 50
    assert ledger(agent, token.address)[0] == 0  # nothing left during the use: the flag's documented risk


@pytest.mark.parametrize("kind", ["erc6909_transfer", "erc6909_any", "costly_balance_any"])
def test_assets_the_cheap_probe_would_miss_are_refused_at_grant(owner, session_key, chain, deploy, kind):
    if kind.startswith("erc6909"):
        asset = deploy("test/MultiToken6909")
        perm = (Permission(asset.address, selector_of("transfer(address,uint256,uint256)"))
                if kind == "erc6909_transfer" else Permission(asset.address, mode=ANY))
    else:
        asset = deploy("test/CostlyBalanceToken")
        perm = Permission(asset.address, mode=ANY)
    policy = SessionPolicy(key=session_key.address, valid_after=0, valid_until=chain.time() + 3_600,
                           permissions=(perm,))
    e = grant_refused(owner, policy, "UncappedAsset")
    assert e.target == asset.address


def test_a_batch_longer_than_the_usage_record_is_refused_on_both_paths(run, agent_for, target, bundler):
    """SessionUsed records the call count in a byte: 256 calls would hide what the use moved from the audit.
    Refused at execution on the direct path, and at validation (AA23, no gas budget spent) as a user op."""
    agent = agent_for(permissions=(Permission(target.address, PING),), max_uses=3)
    ping = Call(target.address, 0, target.encode_abi("ping", [1]))
    if run.path == "direct":
        e = run.refused(agent, [ping] * 256, "BatchTooLarge", {"counter": lambda: target.functions.counter().call()})
    else:
        before = run.state(agent, {"counter": lambda: target.functions.counter().call()})
        op = agent.sign_user_op(fixed_op(agent, [ping] * 256, call_gas=3_000_000))
        with pytest.raises(FailedOpWithRevert) as info:
            agent.entry_point.handle_ops([op], bundler)
        assert info.value.code == "AA23"
        e = info.value.inner
        assert isinstance(e, err("BatchTooLarge"))
        assert run.state(agent, {"counter": lambda: target.functions.counter().call()}) == before
    assert e.calls == 256
    if run.path == "direct":
        run(agent, [ping] * 255)  # the largest batch is fine
        assert target.functions.counter().call() == 255


# =========================================================================== 3. value paid outside execution


@pytest.fixture
def token_paymaster(chain, deploy, owner, token):
    """A token paymaster the owner approved (as such paymasters require): 3,000 USDC per ether."""
    pm = deploy("test/MockTokenPaymaster", [token.address, 3_000 * 10**6])
    chain.send({"to": pm.address, "value": 10**19, "data": pm.encode_abi("deposit", [])}, chain.accounts[6])
    owner.execute(token.address, 0, token.encode_abi("approve", [pm.address, 10**12]))
    return pm


def _pm_op(agent, target, pm, max_fee):
    op = fixed_op(agent, [Call(target.address, 0, target.encode_abi("ping", [1]))], paymaster=pm.address,
                  paymaster_verification_gas_limit=100_000, paymaster_post_op_gas_limit=100_000)
    return agent.sign_user_op(op.replace(max_fee_per_gas=max_fee, max_priority_fee_per_gas=max_fee))


def test_token_paymaster_at_a_huge_fee_is_refused_by_the_gas_budget_before_it_can_charge(
    chain, bundler, agent_for, target, token, token_paymaster
):
    """The issue's example: a 4,000 gwei max fee through an allowlisted token paymaster would have the paymaster
    take ~900 USDC in postOp while the token cap saw nothing. The op's whole possible cost counts against the
    gas budget at validation, so it is refused there (AA23) and nothing moves."""
    pm = token_paymaster
    agent = agent_for(permissions=(Permission(target.address, PING),), token_caps=(TokenCap(token.address, 100),),
                      gas_budget=10**16, paymasters=(pm.address,))
    op = _pm_op(agent, target, pm, 4_000 * 10**9)
    watch = lambda: (token.functions.balanceOf(agent.account).call(), token.functions.balanceOf(pm.address).call(),  # noqa: E731
                     agent.entry_point.balance_of(pm.address), chain.w3.eth.get_balance(bundler.address),
                     status(agent), ledger(agent, token.address), target.functions.counter().call())
    before = watch()
    with pytest.raises(FailedOpWithRevert) as info:
        agent.entry_point.handle_ops([op], bundler)
    assert info.value.code == "AA23"
    inner = info.value.inner
    assert isinstance(inner, err("GasBudgetExceeded"))
    assert (inner.spent, inner.requested, inner.budget) == (0, op.max_gas_cost(), 10**16)
    after = watch()
    assert after[:3] == before[:3] and after[4:] == before[4:]
    assert after[3] <= before[3]  # the bundler (the attacker) only lost the gas of its failed attempt


def test_token_paymaster_within_the_gas_budget_is_charged_its_whole_possible_cost(
    chain, bundler, agent_for, target, token, token_paymaster
):
    pm = token_paymaster
    agent = agent_for(permissions=(Permission(target.address, PING),), token_caps=(TokenCap(token.address, 100),),
                      gas_budget=10**17, paymasters=(pm.address,))
    op = _pm_op(agent, target, pm, MAX_FEE)
    paid = token.functions.balanceOf(pm.address).call()
    (result,) = agent.entry_point.handle_ops([op], bundler)
    result.raise_for_failure()
    taken = token.functions.balanceOf(pm.address).call() - paid
    # postOp sees the cost so far (its own gas and the unused-gas penalty come after): at most the final cost.
    assert 0 < taken <= result.actual_gas_cost * 3_000 * 10**6 // 10**18
    # What the paymaster can take is bounded by what was charged: the max cost, in wei, at its own rate.
    assert status(agent)["gas_spent"] == op.max_gas_cost() >= result.actual_gas_cost
    assert taken <= status(agent)["gas_spent"] * 3_000 * 10**6 // 10**18
    assert ledger(agent, token.address)[0] == 0


# =========================================================================== 4. default deny


@pytest.mark.parametrize(("perm", "selector"), [
    ("transfer", TRANSFER),          # the example: USDC.transfer with no cap
    ("any", b"\x00" * 4),            # any function of something that answers balanceOf
    ("setApprovalForAll", SET_APPROVAL_FOR_ALL),  # an asset-moving selector on any contract (NFTs)
])
def test_permission_that_can_move_an_uncapped_asset_is_refused_at_grant_without_the_flag(
    owner, session_key, chain, token, target, perm, selector
):
    if perm == "transfer":
        p, where = Permission(token.address, TRANSFER), token.address
    elif perm == "any":
        p, where = Permission(token.address, mode=ANY), token.address
    else:
        p, where = Permission(target.address, SET_APPROVAL_FOR_ALL), target.address
    fields = dict(key=session_key.address, valid_after=0, valid_until=chain.time() + 3_600, permissions=(p,))
    e = grant_refused(owner, SessionPolicy(**fields), "UncappedAsset")
    assert (e.target, e.selector_) == (where, selector)
    # With the named flag the owner says so explicitly, and the grant goes through.
    allowed = SessionPolicy(**fields, allow_uncapped_assets=True)
    owner.grant(allowed)
    assert owner.session_id_used(allowed.session_id)


def test_uncapped_transfer_is_refused_at_use_of_a_policy_only_the_flag_can_grant(run, agent_for, token):
    """The attack of the issue, end to end: without the flag the whole balance cannot be reached at all."""
    with pytest.raises(err("UncappedAsset")):
        agent_for(permissions=(Permission(token.address, TRANSFER),))
    assert token.functions.balanceOf(RECIPIENT).call() == 0


def test_a_contract_that_holds_no_assets_needs_no_flag(owner, session_key, chain, target):
    policy = SessionPolicy(key=session_key.address, valid_after=0, valid_until=chain.time() + 3_600,
                           permissions=(Permission(target.address, PING),))
    owner.grant(policy)
    assert owner.session_id_used(policy.session_id)


# =========================================================================== 6. change of delegation


def _usdc_agent(grant, key, token):
    return grant(key, permissions=(Permission(token.address, TRANSFER),), token_caps=(TokenCap(token.address, 100),))


def _plain_redelegation(owner, delegate):
    """What another wallet does: a bare set-code transaction to ``delegate``, no call."""
    nonce = owner.w3.eth.get_transaction_count(owner.address)
    auth = sign_authorization(owner._account, delegate, owner.chain_id, authorization_nonce(nonce,
                                                                                            self_sponsored=True))
    send_transaction(owner.w3, owner._account, {"to": owner.address, "data": b"", "authorizationList": [auth]})


@pytest.mark.parametrize("away", ["simple7702", "undelegate"])
def test_sessions_do_not_survive_leaving_and_coming_back_through_the_sdk(
    chain, owner, grant, session_key, fund, token, away
):
    fund(session_key.address)
    agent = _usdc_agent(grant, session_key, token)
    if away == "simple7702":
        _plain_redelegation(owner, SIMPLE7702_ADDRESS)
    else:
        owner.undelegate()  # the SDK revokes through ERC-7779 onRedelegation before clearing the code
    assert owner.delegation() != owner.implementation
    owner.delegate()
    assert owner.contract.functions.sessionStatus(agent.session_id).call()[0] is False
    with pytest.raises((err("SessionEpochRevoked"), err("SessionNotActive"))):
        agent.send_direct([tcall(token, "transfer", RECIPIENT, 100)])
    assert token.functions.balanceOf(RECIPIENT).call() == 0


def test_keep_sessions_is_the_only_way_back_to_a_live_session(chain, owner, grant, session_key, fund, token):
    fund(session_key.address)
    agent = _usdc_agent(grant, session_key, token)
    owner.undelegate(keep_sessions=True)
    owner.delegate(keep_sessions=True)
    agent.send_direct([tcall(token, "transfer", RECIPIENT, 100)])
    assert token.functions.balanceOf(RECIPIENT).call() == 100


def test_erc7779_interface_revokes_on_redelegation_and_only_for_the_owner(chain, owner, grant, session_key, token):
    agent = _usdc_agent(grant, session_key, token)
    c = owner.contract
    bases = c.functions.accountStorageBases().call()
    assert [int.from_bytes(b, "big") for b in bases] == [0x85DECE25AB95DBA2DE628DD50D9C89670CE8C2BC2392E71AA090A7149BC2AE00]
    stranger = chain.accounts[6]
    with pytest.raises(err("Unauthorized")):
        send_transaction(chain.w3, stranger, {"to": owner.address, "data": c.encode_abi("onRedelegation", [])})
    assert c.functions.sessionStatus(agent.session_id).call()[0] is True
    assert c.functions.onRedelegation().call({"from": owner.address}) is True
    owner._self_call(c.encode_abi("onRedelegation", []), "revoke on redelegation")
    assert c.functions.sessionStatus(agent.session_id).call()[0] is False
    assert c.functions.sessionEpoch().call() == 1


# =========================================================================== 7. empty work


def test_empty_batch_is_refused_on_both_paths_and_costs_no_use_and_no_gas_budget(
    chain, bundler, agent_for, target, session_key, path
):
    agent = agent_for(permissions=(Permission(target.address, PING),), max_uses=3)
    before = (status(agent), agent.entry_point.balance_of(agent.account))
    if path == "direct":
        with pytest.raises(err("EmptyBatch")):
            agent.send_direct([])
        with pytest.raises(err("EmptyBatch")):  # a raw transaction, past any SDK check
            send_transaction(chain.w3, session_key, {"to": agent.account, "data": agent.call_data([])})
    else:
        op = agent.sign_user_op(fixed_op(agent, []))
        with pytest.raises(FailedOpWithRevert) as info:
            agent.entry_point.handle_ops([op], bundler)
        assert info.value.code == "AA23" and isinstance(info.value.inner, err("EmptyBatch"))
    assert (status(agent), agent.entry_point.balance_of(agent.account)) == before


def test_a_session_that_survived_a_visible_redelegation_is_flagged(chain, owner, grant, session_key, token):
    """The known limit, made visible: a wallet re-delegates away and back with plain authorizations (no
    ERC-7779 call, no revoke). The contract cannot know; the SDK sees the code history and says so."""
    from smartkeys.account import delegation_change_since
    from smartkeys.audit import build_audit

    agent = _usdc_agent(grant, session_key, token)
    granted_at = chain.w3.eth.block_number
    assert delegation_change_since(chain.w3, owner.address, granted_at) is None
    assert "survived_redelegation" not in [f.code for f in build_audit(chain.w3, owner.address).session(
        agent.session_id).flags]
    _plain_redelegation(owner, SIMPLE7702_ADDRESS)
    away = chain.w3.eth.block_number
    _plain_redelegation(owner, owner.implementation)
    assert owner.contract.functions.sessionStatus(agent.session_id).call()[0] is True  # it survived
    changed = delegation_change_since(chain.w3, owner.address, granted_at)
    assert changed is not None and granted_at < changed <= away
    flags = build_audit(chain.w3, owner.address).session(agent.session_id).flags
    (flag,) = [f for f in flags if f.code == "survived_redelegation"]
    assert flag.block_number == changed and "revoke" in flag.message
