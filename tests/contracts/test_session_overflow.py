"""Absurd declared amounts meet the cap check with its custom error, never an arithmetic panic."""

from __future__ import annotations

import pytest

from smartkeys.account import Call
from smartkeys.errors import get_error_class
from smartkeys.policy_codec import Permission, TokenCap

MAX = 2**256 - 1


@pytest.fixture
def approver(grant, session_key, token, fund):
    fund(session_key.address)
    return grant(
        session_key,
        permissions=(Permission(token.address, "approve(address,uint256)"),),
        token_caps=(TokenCap(token.address, 10**6),),
    )


def _approve(token, spender, amount):
    return Call(token.address, 0, token.encode_abi("approve", [spender, amount]))


@pytest.mark.parametrize("amounts", [[MAX], [2**255, 2**255], [10**6, MAX]])
def test_huge_declared_approvals_are_refused_with_token_spend_cap_exceeded(chain, approver, token, amounts):
    spender = chain.accounts[9].address
    with pytest.raises(get_error_class("TokenSpendCapExceeded")) as info:
        approver.send_direct([_approve(token, spender, a) for a in amounts])
    assert info.value.requested == min(sum(amounts), MAX)
    assert info.value.cap == 10**6
    assert token.functions.allowance(approver.account, spender).call() == 0


def test_an_over_cap_approval_after_a_reverting_call_reverts_whole_and_the_preflight_names_the_cap(
    chain, grant, session_key, fund, token, deploy
):
    """Token amounts are checked after the calls run (each is charged max(declared, measured)), so a batch
    whose first call reverts on its own (Boom) reports that error, with or without an over-cap approval after it,
    and nothing changes. The SDK's preflight refuses the over-cap batch before signing, naming the cap."""
    from smartkeys.preflight import SessionState, preflight

    target = deploy("test/MockTarget")
    from smartkeys.errors import register_contract_errors

    register_contract_errors(target.abi)
    fund(session_key.address)
    agent = grant(
        session_key,
        permissions=(
            Permission(token.address, "approve(address,uint256)"),
            Permission(target.address, "fail(uint256)"),
        ),
        token_caps=(TokenCap(token.address, 10**6),),
    )
    spender = chain.accounts[9].address
    boom = Call(target.address, 0, target.encode_abi("fail", [7]))
    for amount in (10, 10**6 + 1):
        with pytest.raises(get_error_class("Boom")):
            agent.send_direct([boom, _approve(token, spender, amount)])
    assert token.functions.allowance(agent.account, spender).call() == 0
    state = SessionState.fresh(agent.policy, agent.account, now=chain.time())
    with pytest.raises(get_error_class("TokenSpendCapExceeded")) as info:
        preflight(agent.policy, state, [boom, _approve(token, spender, 10**6 + 1)], now=chain.time() + 1,
                  via_user_op=False)
    assert info.value.requested == 10**6 + 1
