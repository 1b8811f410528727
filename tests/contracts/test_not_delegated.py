"""Owner and session actions on an account that does not run smartkeys are refused with a typed error.

A transaction from an EOA to itself succeeds whatever its data when the EOA has no code, and an account
delegated to another implementation (Simple7702Account) may accept the call and ignore it: both used to be
reported as a successful grant or revoke. Nothing may be sent, and the error names what the account runs.
"""

from __future__ import annotations

import pytest
from eth_account import Account

from smartkeys.account import Call, Owner, SessionAgent
from smartkeys.audit import build_audit
from smartkeys.authorization import authorization_nonce, sign_authorization
from smartkeys.deployments import SIMPLE7702_ADDRESS, account_address
from smartkeys.errors import NotDelegatedError
from smartkeys.policy_codec import Permission, PermissionMode, SessionPolicy

BEEF = "0x000000000000000000000000000000000000bEEF"


def _nothing_sent(chain, address):
    return chain.w3.eth.block_number, chain.w3.eth.get_transaction_count(address)


def _simple_policy(chain, key):
    return SessionPolicy(key=key.address, valid_after=0, valid_until=chain.time() + 86_400, max_uses=5,
                         permissions=(Permission(BEEF, mode=PermissionMode.EMPTY_CALLDATA),),
                         native_per_call=10**15, native_total=10**16, gas_budget=10**17)


def _owner_actions(owner, policy):
    return {
        "grant": lambda: owner.grant(policy),
        "revoke": lambda: owner.revoke(policy.session_id),
        "revoke_all": owner.revoke_all,
        "execute": lambda: owner.execute(BEEF, 0, b""),
        "execute_batch": lambda: owner.execute_batch([Call(BEEF, 0, b"")]),
    }


@pytest.mark.parametrize("action", ["grant", "revoke", "revoke_all", "execute", "execute_batch"])
def test_owner_action_on_eoa_without_code_is_refused_and_names_delegate(chain, session_key, action):
    owner = Owner(chain.w3, chain.accounts[2])
    assert owner.delegation() is None
    before = _nothing_sent(chain, owner.address)
    with pytest.raises(NotDelegatedError) as info:
        _owner_actions(owner, _simple_policy(chain, session_key))[action]()
    err = info.value
    assert (err.account, err.delegation, err.runs) == (owner.address, None, "no code")
    assert "has no code" in str(err) and "delegate it first" in str(err) and "nothing was sent" in str(err)
    assert _nothing_sent(chain, owner.address) == before


@pytest.mark.parametrize("action", ["grant", "revoke", "revoke_all", "execute"])
def test_owner_action_on_eoa_running_simple7702_is_refused_and_names_it(chain, session_key, action):
    eoa = chain.accounts[3]
    auth = sign_authorization(eoa, SIMPLE7702_ADDRESS, chain.chain_id,
                              authorization_nonce(chain.w3.eth.get_transaction_count(eoa.address), self_sponsored=True))
    chain.send({"to": eoa.address, "data": b"", "authorizationList": [auth]}, eoa)
    owner = Owner(chain.w3, eoa)
    assert owner.delegation() == SIMPLE7702_ADDRESS
    before = _nothing_sent(chain, owner.address)
    with pytest.raises(NotDelegatedError) as info:
        _owner_actions(owner, _simple_policy(chain, session_key))[action]()
    assert info.value.delegation == SIMPLE7702_ADDRESS
    assert "Simple7702Account" in info.value.runs and "Simple7702Account" in str(info.value)
    assert account_address() in str(info.value) and "re-delegate" in str(info.value)
    assert _nothing_sent(chain, owner.address) == before


@pytest.mark.parametrize("via", ["direct", "user_op"])
def test_session_use_after_undelegate_raises_not_delegated_not_bad_function_call_output(
        chain, owner, bundler, session_key, fund, via):
    policy = _simple_policy(chain, session_key)
    owner.grant(policy)
    fund(session_key.address)
    agent = SessionAgent(chain.w3, owner.address, session_key, policy)
    agent.call(BEEF, b"", 1, via=via, bundler=None if via == "direct" else bundler)  # works while delegated
    owner.undelegate()
    before = _nothing_sent(chain, session_key.address)
    with pytest.raises(NotDelegatedError) as info:
        agent.call(BEEF, b"", 1, via=via, bundler=None if via == "direct" else bundler)
    assert info.value.delegation is None and f"session 0x{policy.session_id.hex()}" in str(info.value)
    assert _nothing_sent(chain, session_key.address) == before
    with pytest.raises(NotDelegatedError):
        owner.session_report(policy)


def test_audit_after_undelegate_raises_not_delegated_but_an_earlier_block_still_audits(chain, owner, session_key):
    owner.grant(_simple_policy(chain, session_key))
    delegated_block = chain.w3.eth.block_number
    owner.undelegate()
    with pytest.raises(NotDelegatedError) as info:
        build_audit(chain.w3, owner.address)
    assert "audit" in str(info.value)
    report = build_audit(chain.w3, owner.address, to_block=delegated_block)
    assert [s.key for s in report.sessions] == [session_key.address]


def test_owner_on_a_delegated_account_still_grants_and_revokes(chain, owner, session_key):
    policy = _simple_policy(chain, session_key)
    owner.grant(policy)
    assert owner.session_report(policy).live
    owner.revoke(policy.session_id)
    assert not owner.session_report(policy).live
    second = _simple_policy(chain, Account.create())
    assert Owner(chain.w3, chain.accounts[1]).grant(second) == second.session_id
    assert owner.session_report(second).live


@pytest.mark.parametrize("low_level", ["send_direct", "send_user_op"])
def test_low_level_session_sends_after_undelegate_are_refused_too(chain, owner, bundler, session_key, fund, low_level):
    policy = _simple_policy(chain, session_key)
    owner.grant(policy)
    fund(session_key.address)
    agent = SessionAgent(chain.w3, owner.address, session_key, policy)
    owner.undelegate()
    before = _nothing_sent(chain, session_key.address)
    with pytest.raises(NotDelegatedError):
        if low_level == "send_direct":
            agent.send_direct([Call(BEEF, 1, b"")])
        else:
            agent.send_user_op([Call(BEEF, 1, b"")], bundler=bundler)
    assert _nothing_sent(chain, session_key.address) == before
