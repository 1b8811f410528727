"""A real bundler (Alto) behind the hostile-provider proxy (tests/fault_proxy.py): answering for another chain,
or for another EntryPoint, it is refused before the first signature, and Alto never sees the operation."""

from __future__ import annotations

import pytest
from eth_account import Account
from fault_proxy import ChainIdOverride, EntryPointsOverride, MethodRecorder

from smartkeys.account import Call, Owner, SessionAgent
from smartkeys.bundler import BundlerClient, BundlerEntryPointError
from smartkeys.errors import ChainMismatchError
from smartkeys.policy_codec import Permission, PermissionMode, SessionPolicy

BEEF = "0x000000000000000000000000000000000000bEEF"


@pytest.fixture
def fresh_owner(alto_chain):
    eoa = Account.create()
    alto_chain.send({"to": eoa.address, "value": 10**18}, alto_chain.deployer)
    return Owner(alto_chain.w3, eoa)


def test_readme_client_against_a_bundler_on_chain_1_fails_before_signing(alto, alto_chain, fault_proxy, fresh_owner):
    recorder = MethodRecorder()
    proxy = fault_proxy(alto.url, recorder, ChainIdOverride(1))
    client = BundlerClient(proxy.url, max_retries=0)  # as the README builds it: no expected_chain_id
    nonce = alto_chain.w3.eth.get_transaction_count(fresh_owner.address)
    with pytest.raises(ChainMismatchError) as info:  # the first op would carry the EIP-7702 authorization
        fresh_owner.send_user_op([Call(BEEF, 0, b"")], bundler=client)
    assert (info.value.expected, info.value.actual) == (alto_chain.chain_id, 1)
    assert recorder.methods == ["eth_chainId"]
    assert alto_chain.w3.eth.get_transaction_count(fresh_owner.address) == nonce and fresh_owner.delegation() is None


def test_session_op_through_a_bundler_on_chain_1_fails_before_signing(alto, alto_chain, fault_proxy, fresh_owner):
    fresh_owner.delegate()
    key = Account.create()
    policy = SessionPolicy(key=key.address, valid_after=0, valid_until=alto_chain.time() + 3600, max_uses=2,
                           permissions=(Permission(BEEF, mode=PermissionMode.EMPTY_CALLDATA),),
                           native_per_call=10**15, native_total=10**15, gas_budget=10**16)
    fresh_owner.grant(policy)
    recorder = MethodRecorder()
    proxy = fault_proxy(alto.url, recorder, ChainIdOverride(1))
    agent = SessionAgent(alto_chain.w3, fresh_owner.address, key, policy)
    with pytest.raises(ChainMismatchError):
        agent.call(BEEF, b"", 1, bundler=BundlerClient(proxy.url, max_retries=0))
    assert "eth_sendUserOperation" not in recorder.methods and "eth_estimateUserOperationGas" not in recorder.methods
    assert agent.session_state().uses == 0
    # the same bundler without the fault works: the refusal came from the check, not from the op
    receipt = agent.call(BEEF, b"", 1, bundler=BundlerClient(alto.url, max_retries=0, poll_interval=0.05))
    assert receipt.success


def test_bundler_listing_another_entry_point_is_refused(alto, fault_proxy, fresh_owner):
    recorder = MethodRecorder()
    proxy = fault_proxy(alto.url, recorder, EntryPointsOverride(["0x0000000071727De22E5E9d8BAf0edAc6f37da032"]))
    with pytest.raises(BundlerEntryPointError):
        fresh_owner.send_user_op([Call(BEEF, 0, b"")], bundler=BundlerClient(proxy.url, max_retries=0))
    assert recorder.methods == ["eth_chainId", "eth_supportedEntryPoints"]
