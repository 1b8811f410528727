"""Rotation and renewal (``rotateSessionSigner`` / ``renewSessionPolicy``; ``Owner.rotate_session`` / ``renew_session``).

What must hold, tried on both session paths where a session is used (``path``: a direct transaction of the key,
or a user operation it signed):

- the successor carries every counter over exactly (uses, native and gas spent, token and native ledgers, the
  rate-limit state) and can spend only what was left: allowed at the boundary, refused one past it;
- the old key is refused from the rotation's block, with ``SessionNotActive(oldId)``, and nothing changes;
- a successor that raises any limit or changes the scope is refused on chain (a mined transaction that fails,
  ``SuccessorRaisesLimit`` / ``SuccessorChangesField`` naming the field and both values, nothing changed) and
  by the SDK first (the same class and values, nothing sent);
- a revoked, expired or epoch-revoked session cannot be rotated or renewed; only the owner can do either.
"""

from __future__ import annotations

import dataclasses

import pytest
from eth_account import Account
from test_session_budgets import (  # noqa: F401  (path, run, agent_for, target are fixtures)
    RECIPIENT,
    ZERO,
    agent_for,
    err,
    jump_to,
    path,
    run,
    target,
    tcall,
)

from smartkeys.account import Call, SessionAgent, session_status
from smartkeys.errors import TransactionFailedError
from smartkeys.policy_codec import Permission, SessionPolicy, TokenCap
from smartkeys.preflight import preflight, read_session_state
from smartkeys.tx import send_transaction

HOUR = 3_600
MINED_GAS = 600_000  # explicit: the refused owner transaction is mined, so the refusal is the chain's own


# --------------------------------------------------------------------------- helpers


def rich_policy_fields(token, target) -> dict:
    """Every kind of counter: uses, native total and period, a token total and period, a rate limit, gas."""
    return dict(
        permissions=(Permission(token.address, "transfer(address,uint256)"),
                     Permission(RECIPIENT, mode=2), Permission(target.address, "ping(uint256)")),
        token_caps=(TokenCap(token.address, 1_000, HOUR, 800),),
        max_uses=10, native_per_call=100, native_total=1_000, native_period=HOUR, native_per_period=500,
        uses_per_period=6, use_period=HOUR,
    )


def counters(w3, account: str, policy: SessionPolicy) -> dict:
    """Every counter of ``policy``'s session: the status and each ledger word (token, native, rate)."""
    contract = w3.eth.contract(address=account, abi=_abi())
    sid = policy.session_id
    out = {"status": tuple(contract.functions.sessionStatus(sid).call())}
    for asset in [cap.token for cap in policy.token_caps] + [ZERO, account]:
        out[asset] = tuple(contract.functions.sessionLedger(sid, asset).call())
    return out


def _abi():
    from smartkeys import artifacts

    return artifacts.load("SmartKeysAccount")["abi"]


def snapshot(owner, token, *policies) -> dict:
    """Counters of every policy, the account's token and native balances, the epoch."""
    w3 = owner.w3
    out = {p.session_id: counters(w3, owner.address, p) for p in policies}
    out["token.account"] = token.functions.balanceOf(owner.address).call()
    out["token.recipient"] = token.functions.balanceOf(RECIPIENT).call()
    out["native.recipient"] = w3.eth.get_balance(RECIPIENT)
    out["epoch"] = owner.contract.functions.sessionEpoch().call()
    return out


def agent_of(owner, key, policy) -> SessionAgent:
    return SessionAgent(owner.w3, owner.address, key, policy)


def new_key(fund):
    key = Account.create()
    fund(key.address)
    return key


def mined_refusal(owner, function: str, current: SessionPolicy, nxt: SessionPolicy, sender=None):
    """Send ``function(current, next)`` as a mined transaction (no SDK check); return the decoded revert."""
    sender = sender or owner._account
    data = owner.contract.encode_abi(function, [current.encode(), nxt.encode()])
    with pytest.raises(TransactionFailedError) as info:
        send_transaction(owner.w3, sender, {"to": owner.address, "data": data}, gas=MINED_GAS)
    return info.value.revert


def refused_everywhere(owner, function, current, nxt, error: str, token):
    """``nxt`` is refused by the chain (mined, reverted) and by the SDK (nothing sent), with the same error and
    values (a block timestamp aside: the SDK checks against the next block); nothing changed. Returns the
    chain's error."""
    before = snapshot(owner, token, current, nxt)
    on_chain = mined_refusal(owner, function, current, nxt)
    assert isinstance(on_chain, err(error)), on_chain
    nonce = owner.w3.eth.get_transaction_count(owner.address)
    with pytest.raises(err(error)) as sdk:
        owner._succeed(function, current, nxt, "test")
    assert owner.w3.eth.get_transaction_count(owner.address) == nonce  # the SDK sent nothing
    assert sdk.value.values[:1 if error == "SessionExpired" else None] == \
        on_chain.values[:1 if error == "SessionExpired" else None]
    assert snapshot(owner, token, current, nxt) == before
    return on_chain


# --------------------------------------------------------------------------- counters carry over


def test_rotation_carries_every_counter_exactly_and_revokes_the_old_id(run, agent_for, token, target, owner, fund,
                                                                       chain):
    agent = agent_for(**rich_policy_fields(token, target))
    run(agent, [tcall(token, "transfer", RECIPIENT, 300), Call(RECIPIENT, 100)])
    run(agent, [tcall(token, "transfer", RECIPIENT, 200), Call(RECIPIENT, 50)])
    old = counters(chain.w3, owner.address, agent.policy)
    assert old["status"][1:4] == (2, 150, old["status"][3]) and old[token.address][0] == 500

    key2 = new_key(fund)
    nxt = owner.rotate_session(agent.policy, key2.address)

    assert nxt.key == key2.address and nxt.session_id != agent.session_id
    carried = counters(chain.w3, owner.address, nxt)
    assert carried == {**old, "status": (True, *old["status"][1:])}  # live, same uses/native/gas/epoch
    after_old = counters(chain.w3, owner.address, agent.policy)
    assert after_old == {**old, "status": (False, *old["status"][1:])}  # dead, counters kept for the audit


def test_rotated_key_spends_exactly_what_was_left_and_one_unit_past_is_refused(run, agent_for, token, owner, fund):
    agent = agent_for(permissions=(Permission(token.address, "transfer(address,uint256)"),),
                      token_caps=(TokenCap(token.address, 1_000),), max_uses=4)
    run(agent, [tcall(token, "transfer", RECIPIENT, 600)])
    key2 = new_key(fund)
    successor = agent_of(owner, key2, owner.rotate_session(agent.policy, key2.address))

    e = run.refused(successor, [tcall(token, "transfer", RECIPIENT, 401)], "TokenSpendCapExceeded")
    assert (e.token, e.spent, e.requested, e.cap) == (token.address, 600, 401, 1_000)
    run(successor, [tcall(token, "transfer", RECIPIENT, 400)])  # exactly the rest
    assert successor.contract.functions.sessionLedger(successor.session_id, token.address).call()[0] == 1_000
    assert session_status(owner.w3, owner.address, successor.session_id)["uses"] == 2
    # the use limit carried too: two more uses allowed in all (4), the third refused
    run(successor, [tcall(token, "transfer", RECIPIENT, 0)])
    run(successor, [tcall(token, "transfer", RECIPIENT, 0)])
    e = run.refused(successor, [tcall(token, "transfer", RECIPIENT, 0)], "UsageLimitReached")
    assert e.maxUses == 4


def test_old_key_is_refused_from_the_rotation_block_on_both_paths_and_nothing_changes(
    path, agent_for, token, owner, fund, bundler, chain
):
    agent = agent_for(permissions=(Permission(token.address, "transfer(address,uint256)"),),
                      token_caps=(TokenCap(token.address, 1_000),))
    agent.send_direct([tcall(token, "transfer", RECIPIENT, 100)])
    key2 = new_key(fund)
    nxt = owner.rotate_session(agent.policy, key2.address)
    before = snapshot(owner, token, agent.policy, nxt)

    calls = [tcall(token, "transfer", RECIPIENT, 1)]
    if path == "direct":
        with pytest.raises(err("SessionNotActive")) as info:
            agent.send_direct(calls)
        refusal = info.value
    else:
        op = agent.sign_user_op(agent.build_user_op(calls, call_gas_limit=400_000))
        with pytest.raises(err("FailedOp")) as info:
            agent.entry_point.handle_ops([op], bundler)
        assert info.value.code == "AA23"
        refusal = info.value.inner
        assert isinstance(refusal, err("SessionNotActive"))
    assert refusal.sessionId == agent.session_id
    assert snapshot(owner, token, agent.policy, nxt) == before
    # and the SDK's preflight says the same before signing anything
    with pytest.raises(err("SessionNotActive")) as pre:
        preflight(agent.policy, read_session_state(chain.w3, owner.address, agent.policy), calls,
                  now=chain.time() + 1, via_user_op=path != "direct")
    assert pre.value.sessionId == agent.session_id


def test_rotation_emits_session_granted_and_session_rotated(agent_for, token, owner, fund, chain):
    agent = agent_for(permissions=(Permission(token.address, "transfer(address,uint256)"),),
                      token_caps=(TokenCap(token.address, 1_000),))
    key2 = new_key(fund)
    nxt = owner.rotate_session(agent.policy, key2.address)
    block = chain.w3.eth.block_number
    rotated = owner.contract.events.SessionRotated().get_logs(from_block=block, to_block=block)
    granted = owner.contract.events.SessionGranted().get_logs(from_block=block, to_block=block)
    assert [dict(e["args"]) for e in rotated] == [{"previousId": agent.session_id, "nextId": nxt.session_id,
                                                   "oldKey": agent.policy.key, "newKey": key2.address}]
    assert [bytes(e["args"]["policy"]) for e in granted] == [nxt.encode()]


# --------------------------------------------------------------------------- renewal


def test_renew_extends_the_window_keeps_the_counters_and_emits_session_renewed(run, agent_for, token, owner, chain):
    now = chain.time()
    agent = agent_for(permissions=(Permission(token.address, "transfer(address,uint256)"),),
                      token_caps=(TokenCap(token.address, 1_000),), valid_until=now + 100)
    run(agent, [tcall(token, "transfer", RECIPIENT, 250)])
    end = now + 10 * HOUR
    nxt = owner.renew_session(agent.policy, valid_until=end)
    assert (nxt.key, nxt.valid_until) == (agent.policy.key, end)
    block = chain.w3.eth.block_number
    (ev,) = owner.contract.events.SessionRenewed().get_logs(from_block=block, to_block=block)
    assert dict(ev["args"]) == {"previousId": agent.session_id, "nextId": nxt.session_id,
                                "oldValidUntil": now + 100, "newValidUntil": end}
    assert owner.contract.functions.sessionLedger(nxt.session_id, token.address).call()[0] == 250


def test_renewed_session_is_allowed_at_its_new_end_and_refused_one_second_past_on_both_paths(
    path, agent_for, token, owner, chain, bundler, session_key
):
    now = chain.time()
    agent = agent_for(permissions=(Permission(token.address, "transfer(address,uint256)"),),
                      token_caps=(TokenCap(token.address, 1_000),), valid_until=now + 100)
    agent.send_direct([tcall(token, "transfer", RECIPIENT, 250)])
    end = now + 2 * HOUR
    renewed = agent_of(owner, session_key, owner.renew_session(agent.policy, valid_until=end))
    calls = [tcall(token, "transfer", RECIPIENT, 1)]

    def use():
        if path == "direct":
            return renewed.send_direct(calls)
        op = renewed.sign_user_op(renewed.build_user_op(calls, call_gas_limit=400_000))
        (result,) = renewed.entry_point.handle_ops([op], bundler, gas=3_000_000)
        return result.raise_for_failure()

    jump_to(chain, end)  # past the old end, at the new one (inclusive)
    use()
    assert renewed.contract.functions.sessionLedger(renewed.session_id, token.address).call()[0] == 251
    before = snapshot(owner, token, renewed.policy)
    jump_to(chain, end + 1)
    if path == "direct":
        with pytest.raises(err("SessionExpired")) as info:
            renewed.send_direct(calls)
        assert (info.value.validUntil, info.value.timestamp) == (end, end + 1)
    else:
        op = renewed.sign_user_op(renewed.build_user_op(calls, call_gas_limit=400_000))
        with pytest.raises(err("FailedOp")) as failed:
            renewed.entry_point.handle_ops([op], bundler)
        assert failed.value.code == "AA22"
    assert snapshot(owner, token, renewed.policy) == before


def test_renew_shorter_is_revoke_then_reissue_in_one_transaction(agent_for, token, owner, chain, session_key):
    now = chain.time()
    agent = agent_for(permissions=(Permission(token.address, "transfer(address,uint256)"),),
                      token_caps=(TokenCap(token.address, 1_000),), valid_until=now + 30 * 86_400)
    agent.send_direct([tcall(token, "transfer", RECIPIENT, 10)])
    nonce = chain.w3.eth.get_transaction_count(owner.address)
    nxt = owner.renew_session(agent.policy, valid_until=now + HOUR)
    assert chain.w3.eth.get_transaction_count(owner.address) == nonce + 1  # one transaction
    shorter = agent_of(owner, session_key, nxt)
    jump_to(chain, now + HOUR + 1)
    with pytest.raises(err("SessionExpired")) as info:
        shorter.send_direct([tcall(token, "transfer", RECIPIENT, 1)])
    assert info.value.validUntil == now + HOUR
    with pytest.raises(err("SessionNotActive")):  # the long one is dead
        agent.send_direct([tcall(token, "transfer", RECIPIENT, 1)])


def test_renew_lowering_a_cap_to_what_was_spent_leaves_nothing_and_below_it_is_refused(
    agent_for, token, owner, session_key
):
    agent = agent_for(permissions=(Permission(token.address, "transfer(address,uint256)"),),
                      token_caps=(TokenCap(token.address, 1_000, HOUR, 900),), native_total=50)
    agent.send_direct([tcall(token, "transfer", RECIPIENT, 600)])
    below = dataclasses.replace(agent.policy, token_caps=(TokenCap(token.address, 599, HOUR, 900),))
    e = refused_everywhere(owner, "renewSessionPolicy", agent.policy, below, "SuccessorBelowSpent", token)
    assert (e.field, e.asset, e.spent, e.proposed) == ("tokenCaps.cap", token.address, 600, 599)
    below = dataclasses.replace(agent.policy, token_caps=(TokenCap(token.address, 1_000, HOUR, 599),))
    e = refused_everywhere(owner, "renewSessionPolicy", agent.policy, below, "SuccessorBelowSpent", token)
    assert (e.field, e.asset, e.spent, e.proposed) == ("tokenCaps.perPeriod", token.address, 600, 599)

    lowered = agent_of(owner, session_key,
                       owner.renew_session(agent.policy, token_caps={token.address: 600}, native_total=0))
    with pytest.raises(err("TokenSpendCapExceeded")) as info:
        lowered.send_direct([tcall(token, "transfer", RECIPIENT, 1)])
    assert (info.value.spent, info.value.requested, info.value.cap) == (600, 1, 600)


# --------------------------------------------------------------------------- refusals: raises and scope


RAISES = [
    # (python change, contract field, asset is the token, current, proposed)
    ({"max_uses": 11}, "maxUses", False, 10, 11),
    ({"max_uses": 0}, "maxUses", False, 10, 0),
    ({"native_per_call": 101}, "nativePerCall", False, 100, 101),
    ({"native_total": 1_001}, "nativeTotal", False, 1_000, 1_001),
    ({"native_per_period": 501}, "nativePerPeriod", False, 500, 501),
    ({"gas_budget": 10**18 + 1}, "gasBudget", False, 10**18, 10**18 + 1),
    ({"token_caps": "cap"}, "tokenCaps.cap", True, 1_000, 1_001),
    ({"token_caps": "per_period"}, "tokenCaps.perPeriod", True, 800, 801),
    ({"uses_per_period": 7}, "usesPerPeriod", False, 6, 7),
]


@pytest.mark.parametrize("function", ["renewSessionPolicy", "rotateSessionSigner"])
@pytest.mark.parametrize(("change", "field", "on_token", "current", "proposed"), RAISES,
                         ids=[r[1] + ("-unlimited" if r[0] == {"max_uses": 0} else "") for r in RAISES])
def test_successor_raising_a_limit_is_refused_on_chain_and_by_the_sdk_naming_field_and_values(
    agent_for, token, target, owner, function, change, field, on_token, current, proposed
):
    agent = agent_for(**rich_policy_fields(token, target))
    nxt = agent.policy
    if "token_caps" in change:
        cap = nxt.token_caps[0]
        cap = dataclasses.replace(cap, cap=1_001) if change["token_caps"] == "cap" else \
            dataclasses.replace(cap, per_period=801)
        nxt = dataclasses.replace(nxt, token_caps=(cap,))
    else:
        nxt = dataclasses.replace(nxt, **change)
    if function == "rotateSessionSigner":
        nxt = dataclasses.replace(nxt, key=Account.create().address)
    e = refused_everywhere(owner, function, agent.policy, nxt, "SuccessorRaisesLimit", token)
    assert (e.field, e.asset, e.current, e.proposed) == (field, token.address if on_token else ZERO, current,
                                                         proposed)


def test_sdk_refusal_of_a_raise_names_the_python_field_and_the_fix(agent_for, token, target, owner):
    agent = agent_for(**rich_policy_fields(token, target))
    with pytest.raises(err("SuccessorRaisesLimit")) as info:
        owner.renew_session(agent.policy, native_total=2_000)
    text = str(info.value)
    assert "native_total" in text and "2000" in text and "1000" in text and "fix:" in text


def test_lowering_the_min_interval_raises_the_rate_and_is_refused(agent_for, token, target, owner):
    agent = agent_for(permissions=(Permission(target.address, "ping(uint256)"),), min_interval=60)
    e = refused_everywhere(owner, "renewSessionPolicy", agent.policy, dataclasses.replace(agent.policy, min_interval=59),
                           "SuccessorRaisesLimit", token)
    assert (e.field, e.current, e.proposed) == ("minInterval", 60, 59)


def _scope_changes(policy: SessionPolicy, token, target) -> dict[str, SessionPolicy]:
    r = dataclasses.replace
    other = Account.create().address
    return {
        "validAfter": r(policy, valid_after=policy.valid_after + 1),
        "permissionCount": r(policy, permissions=policy.permissions + (Permission(target.address, "fail(uint256)"),)),
        "permissions": r(policy, permissions=policy.permissions[:2]
                         + (Permission(target.address, "fail(uint256)"),)),
        "tokenCount": r(policy, token_caps=policy.token_caps + (TokenCap(other, 1),)),
        "tokenCaps.period": r(policy, token_caps=(r(policy.token_caps[0], period=2 * HOUR),)),
        "nativePeriod": r(policy, native_period=2 * HOUR),
        "paymasterCount": r(policy, paymasters=(other,)),
        "flags": r(policy, allow_uncapped_assets=True),
        "usePeriod": r(policy, use_period=2 * HOUR),
    }


@pytest.mark.parametrize("field", ["validAfter", "permissionCount", "permissions", "tokenCount", "tokenCaps.period",
                                   "nativePeriod", "paymasterCount", "flags", "usePeriod"])
def test_successor_changing_the_scope_or_a_period_is_refused_naming_the_field(agent_for, token, target, owner, field):
    agent = agent_for(**rich_policy_fields(token, target))
    nxt = _scope_changes(agent.policy, token, target)[field]
    e = refused_everywhere(owner, "renewSessionPolicy", agent.policy, nxt, "SuccessorChangesField", token)
    assert e.field == field


def test_widening_with_argument_rules_changed_is_refused(agent_for, token, owner, target):
    from smartkeys.argument_rules import ArgumentRule, RuleOp

    ping = Permission(target.address, "ping(uint256)", rules=(ArgumentRule(0, RuleOp.LE, "uint256", (5,)),))
    agent = agent_for(permissions=(ping,))
    wider = dataclasses.replace(agent.policy, permissions=(dataclasses.replace(
        ping, rules=(ArgumentRule(0, RuleOp.LE, "uint256", (6,)),)),))
    e = refused_everywhere(owner, "renewSessionPolicy", agent.policy, wider, "SuccessorChangesField", token)
    assert e.field == "argumentRules"


def test_renew_cannot_change_the_key_and_rotate_must(agent_for, token, target, owner):
    agent = agent_for(permissions=(Permission(target.address, "ping(uint256)"),))
    other = Account.create().address
    e = refused_everywhere(owner, "renewSessionPolicy", agent.policy, dataclasses.replace(agent.policy, key=other),
                           "SuccessorChangesField", token)
    assert (e.field, e.current, e.proposed) == ("key", int(agent.policy.key, 16), int(other, 16))
    same = dataclasses.replace(agent.policy, salt=agent.policy.salt + 1)
    e = refused_everywhere(owner, "rotateSessionSigner", agent.policy, same, "InvalidSessionKey", token)
    assert e.key == agent.policy.key
    to_account = dataclasses.replace(agent.policy, key=owner.address)
    e = refused_everywhere(owner, "rotateSessionSigner", agent.policy, to_account, "InvalidSessionKey", token)
    assert e.key == owner.address


def test_unlimited_uses_cannot_become_limited_since_they_were_not_counted(agent_for, token, target, owner):
    agent = agent_for(permissions=(Permission(target.address, "ping(uint256)"),))
    e = refused_everywhere(owner, "renewSessionPolicy", agent.policy, dataclasses.replace(agent.policy, max_uses=5),
                           "SuccessorChangesField", token)
    assert (e.field, e.current, e.proposed) == ("maxUses", 0, 5)


# --------------------------------------------------------------------------- refusals: dead sessions, non-owners


@pytest.mark.parametrize("function", ["renewSessionPolicy", "rotateSessionSigner"])
@pytest.mark.parametrize("how", ["revoked", "epoch-revoked", "expired", "rotated-away"])
def test_a_dead_session_cannot_be_rotated_or_renewed(agent_for, token, target, owner, chain, fund, function, how):
    now = chain.time()
    agent = agent_for(permissions=(Permission(target.address, "ping(uint256)"),), valid_until=now + 100)
    nxt = dataclasses.replace(agent.policy, valid_until=now + HOUR)
    if function == "rotateSessionSigner":
        nxt = dataclasses.replace(nxt, key=Account.create().address)
    if how == "revoked":
        owner.revoke(agent.session_id)
        error = "SessionNotActive"
    elif how == "epoch-revoked":
        owner.revoke_all()
        error = "SessionEpochRevoked"
    elif how == "rotated-away":
        owner.rotate_session(agent.policy, new_key(fund).address)
        error = "SessionNotActive"
    else:
        jump_to(chain, now + 101)
        chain.mine()
        error = "SessionExpired"
    e = refused_everywhere(owner, function, agent.policy, nxt, error, token)
    if error == "SessionExpired":
        assert e.validUntil == now + 100
    else:
        assert e.sessionId == agent.session_id


@pytest.mark.parametrize("function", ["renewSessionPolicy", "rotateSessionSigner"])
@pytest.mark.parametrize("who", ["stranger", "session-key"])
def test_only_the_owner_can_rotate_or_renew(agent_for, token, target, owner, chain, session_key, function, who):
    agent = agent_for(permissions=(Permission(target.address, "ping(uint256)"),))
    nxt = dataclasses.replace(agent.policy, valid_until=agent.policy.valid_until + 1)
    if function == "rotateSessionSigner":
        nxt = dataclasses.replace(nxt, key=chain.accounts[6].address)
    sender = chain.accounts[6] if who == "stranger" else session_key
    before = snapshot(owner, token, agent.policy, nxt)
    e = mined_refusal(owner, function, agent.policy, nxt, sender=sender)
    assert isinstance(e, err("Unauthorized")) and e.caller == sender.address
    assert snapshot(owner, token, agent.policy, nxt) == before


def test_successor_id_granted_before_is_refused_and_the_sdk_picks_a_free_salt(agent_for, target, owner, token,
                                                                                session_key):
    agent = agent_for(permissions=(Permission(target.address, "ping(uint256)"),))
    taken = dataclasses.replace(agent.policy, salt=7)
    owner.grant(taken)
    before = snapshot(owner, token, agent.policy, taken)
    e = mined_refusal(owner, "renewSessionPolicy", agent.policy, taken)
    assert isinstance(e, err("SessionAlreadyGranted")) and e.sessionId == taken.session_id
    assert snapshot(owner, token, agent.policy, taken) == before
    nxt = owner.renew_session(agent.policy, valid_until=agent.policy.valid_until)  # nothing but a salt changes
    assert nxt.salt not in (agent.policy.salt, 7)
    assert session_status(owner.w3, owner.address, nxt.session_id)["live"]


def test_rotation_op_before_an_old_key_op_in_the_same_bundle_stops_it(agent_for, token, owner, fund, bundler, chain):
    """EntryPoint v0.8 validates every op of a bundle before executing any: the old key's op passes validation
    (its gas is charged to the old id, and carried over), then the rotation runs, then the op is refused."""
    from smartkeys.succession import successor_policy

    agent = agent_for(permissions=(Permission(token.address, "transfer(address,uint256)"),),
                      token_caps=(TokenCap(token.address, 1_000),))
    session_op = agent.sign_user_op(agent.build_user_op([tcall(token, "transfer", RECIPIENT, 5)],
                                                        call_gas_limit=400_000))
    nxt = successor_policy(agent.policy, key=new_key(fund).address)
    data = owner.contract.encode_abi("rotateSessionSigner", [agent.policy.encode(), nxt.encode()])
    rotate_op = owner.sign_user_op(owner.build_user_op([Call(owner.address, 0, data)], call_gas_limit=600_000))
    recipient = token.functions.balanceOf(RECIPIENT).call()

    rotated, used = owner.entry_point.handle_ops([rotate_op, session_op], bundler, gas=4_000_000)

    assert rotated.success is True and used.success is False
    assert isinstance(used.revert, err("SessionNotActive")) and used.revert.sessionId == agent.session_id
    assert token.functions.balanceOf(RECIPIENT).call() == recipient
    old, new = counters(chain.w3, owner.address, agent.policy), counters(chain.w3, owner.address, nxt)
    assert new[token.address][0] == old[token.address][0] == 0
    assert new["status"] == (True, *old["status"][1:]) and old["status"][0] is False
    assert old["status"][3] == session_op.max_gas_cost()  # the op's validation charge, carried over
