"""A session key may only use its own EntryPoint nonce lane (key = its address)."""

from __future__ import annotations

import pytest

from smartkeys.account import Call
from smartkeys.errors import FailedOpWithRevert, get_error_class
from smartkeys.policy_codec import Permission, TokenCap


@pytest.fixture
def agent(grant, session_key, token):
    return grant(session_key, permissions=(Permission(token.address, "transfer(address,uint256)"),),
                 token_caps=(TokenCap(token.address, 10**24),))


def _transfer(token, to, amount=1):
    return Call(token.address, 0, token.encode_abi("transfer", [to, amount]))


@pytest.mark.parametrize("lane", ["owner", "other-key"])
def test_session_op_on_a_foreign_nonce_lane_is_refused_and_the_lane_is_untouched(
    chain, agent, token, bundler, owner, lane
):
    foreign = 0 if lane == "owner" else int(chain.accounts[5].address, 16)
    entry_point = agent.entry_point
    nonce_before = entry_point.get_nonce(owner.address, foreign)
    op = agent.build_user_op([_transfer(token, chain.accounts[9].address)], nonce=nonce_before)
    op = agent.sign_user_op(op)
    with pytest.raises(FailedOpWithRevert) as info:
        entry_point.handle_ops([op], bundler)
    assert info.value.code == "AA23"
    inner = info.value.inner
    assert isinstance(inner, get_error_class("SessionNonceLaneMismatch"))
    assert inner.expected_lane == int(agent.key_address, 16)
    assert inner.lane == foreign
    assert entry_point.get_nonce(owner.address, foreign) == nonce_before


def test_session_op_on_its_own_lane_runs(chain, agent, token, bundler):
    before = token.functions.balanceOf(chain.accounts[9].address).call()
    agent.send_user_op([_transfer(token, chain.accounts[9].address, 5)], bundler=bundler)
    assert token.functions.balanceOf(chain.accounts[9].address).call() == before + 5
    assert agent.entry_point.get_nonce(agent.account, agent.nonce_key) & (2**64 - 1) == 1
