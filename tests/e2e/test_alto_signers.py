"""Signers other than a local key through a real ERC-4337 bundler (Alto 0.0.20, fixtures in tests/alto.py).

The owner signs with a remote signer over JSON-RPC (a loopback server holding the key, tests/loopback_signer.py):
its operation goes to Alto as EIP-712 typed data signed remotely, the bundler's simulation accepts the signature
and the chain runs it. The chain is never reverted (Alto keeps state): every test makes its own EOA.
"""

from __future__ import annotations

import pytest
from eth_abi import encode as abi_encode
from eth_account import Account
from loopback_signer import LoopbackSigner

from smartkeys.account import Call, Owner
from smartkeys.bundler import Bundler
from smartkeys.policy_codec import Permission, SessionPolicy, TokenCap
from smartkeys.signers import JsonRpcSigner

USDC = 10**6


@pytest.fixture(scope="module")
def token(alto_chain):
    from smartkeys import artifacts
    from smartkeys.errors import register_contract_errors

    address = alto_chain.deploy_create2("test/MockERC20", 7702, ["USD Coin", "USDC", 6])
    contract = alto_chain.w3.eth.contract(address=address, abi=artifacts.load("test/MockERC20")["abi"])
    register_contract_errors(contract.abi)
    return contract


def test_owner_operation_and_grant_signed_by_a_remote_signer_go_through_alto(alto_chain, alto_client, token):
    w3 = alto_chain.w3
    eoa = Account.create()
    alto_chain.send({"to": eoa.address, "value": 10 * 10**18}, alto_chain.deployer)
    Owner(w3, eoa).delegate()  # the keystore key, once (an authorization has no JSON-RPC form)
    alto_chain.send({"to": token.address, "data": token.encode_abi("mint", [eoa.address, 100 * USDC])},
                    alto_chain.deployer)
    server = LoopbackSigner([eoa])
    try:
        owner = Owner(w3, JsonRpcSigner(server.url, api="web3signer"))
        assert isinstance(alto_client, Bundler)
        shop = Account.create().address
        key = Account.create()
        policy = SessionPolicy(key=key.address, valid_after=0, valid_until=alto_chain.time() + 3600,
                               permissions=(Permission(token.address, "transfer(address,uint256)"),),
                               token_caps=(TokenCap(token.address, 10 * USDC),))
        pay = Call(token.address, 0, bytes.fromhex("a9059cbb") + abi_encode(["address", "uint256"], [shop, 3 * USDC]))
        grant = Call(owner.address, 0, owner.contract.encode_abi("grantSession", [policy.encode()]))

        result = owner.send_user_op([pay, grant], bundler=alto_client)
    finally:
        server.close()
    assert result.success and result.sender == eoa.address
    assert token.functions.balanceOf(shop).call() == 3 * USDC
    assert owner.session_report(policy).live
    assert server.calls.count("eth_signTypedData") == 1 and "eth_signTransaction" not in server.calls
