"""Nonces for signing are read at the ``pending`` block, on a real node with block times (anvil, 1-second blocks).

The embedded chain mines every transaction at once, so ``latest`` and ``pending`` never differ there. On a node
with block times, an owner who sends a transaction without waiting and then delegates used to get an
authorization carrying latest nonce + 1 inside a type-4 transaction that took the pending nonce: the node
skipped the authorization and the paid transaction set no code.
These tests start their own anvil (or use the suite's with ``--chain anvil``): fixtures in tests/fault_proxy.py.
"""

from __future__ import annotations

import pytest
from eth_account import Account

from smartkeys.account import Call, Owner
from smartkeys.deployments import ENTRY_POINT_V08, account_address
from smartkeys.entrypoint import EntryPoint
from smartkeys.tx import suggest_fees

BEEF = "0x000000000000000000000000000000000000bEEF"


def _funded(chain, wei=10**18):
    eoa = Account.create()
    chain.send({"to": eoa.address, "value": wei}, chain.accounts[7])
    return eoa


def _block_time_mining(chain, seconds=1):
    chain.w3.provider.make_request("evm_setAutomine", [False])
    chain.w3.provider.make_request("evm_setIntervalMining", [seconds])


def _send_without_waiting(w3, account, tx):
    """Sign and send ``tx`` from ``account`` at its pending nonce; return the hash without waiting."""
    max_fee, tip = suggest_fees(w3)
    tx = {"chainId": w3.eth.chain_id, "nonce": w3.eth.get_transaction_count(account.address, "pending"),
          "value": 0, "data": b"", "gas": 200_000, "maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip, **tx}
    return w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)


@pytest.mark.parametrize("payer", ["self-sponsored", "sponsored"])
def test_delegate_right_after_an_unmined_transaction_sets_the_code(anvil, payer):
    eoa, sponsor = _funded(anvil), _funded(anvil)
    _block_time_mining(anvil)
    w3 = anvil.w3
    pending_hash = _send_without_waiting(w3, eoa, {"to": BEEF, "value": 1})
    assert w3.eth.get_transaction_count(eoa.address, "pending") == w3.eth.get_transaction_count(eoa.address) + 1
    owner = Owner(w3, eoa)
    receipt = owner.delegate(sponsor=sponsor if payer == "sponsored" else None)
    assert receipt["status"] == 1
    assert owner.delegation() == account_address()
    assert w3.eth.wait_for_transaction_receipt(pending_hash, timeout=10)["status"] == 1


def test_entry_point_nonce_counts_a_pending_operation(anvil):
    eoa, bundler = _funded(anvil), _funded(anvil)
    owner = Owner(anvil.w3, eoa)
    owner.delegate()
    w3 = anvil.w3
    ep = EntryPoint(w3)
    op = owner.sign_user_op(owner.build_user_op([Call(BEEF, 1, b"")]))
    assert ep.get_nonce(eoa.address, 0, block="latest") == op.nonce == 0
    _block_time_mining(anvil)
    data = ep.contract.encode_abi("handleOps", [[op.to_abi_tuple()], bundler.address])
    sent = _send_without_waiting(w3, bundler, {"to": ENTRY_POINT_V08, "data": data, "gas": 1_000_000})
    # before mining: latest still says 0, the pending block (what the next op will follow) says 1
    assert ep.get_nonce(eoa.address, 0, block="latest") == 0
    assert ep.get_nonce(eoa.address, 0) == 1
    assert owner.build_user_op([Call(BEEF, 1, b"")]).nonce == 1
    assert w3.eth.wait_for_transaction_receipt(sent, timeout=10)["status"] == 1


def test_first_user_op_authorization_for_a_bundler_carries_the_pending_nonce(anvil):
    """The bundler sends the type-4 bundle, so the authorization must carry the EOA's nonce as it will be
    then: counting its transaction that is still pending."""
    from smartkeys.bundler import BundlerClient, BundlerRPCError

    eoa = _funded(anvil)
    seen = {}

    def bundler(payload):
        method = payload["method"]
        if method == "eth_chainId":
            return {"jsonrpc": "2.0", "id": payload["id"], "result": hex(anvil.chain_id)}
        if method == "eth_supportedEntryPoints":
            return {"jsonrpc": "2.0", "id": payload["id"], "result": [ENTRY_POINT_V08]}
        seen[method] = payload["params"][0]
        return {"jsonrpc": "2.0", "id": payload["id"], "error": {"code": -32601, "message": "stop here"}}

    _block_time_mining(anvil)
    _send_without_waiting(anvil.w3, eoa, {"to": BEEF, "value": 1})
    latest, pending = (anvil.w3.eth.get_transaction_count(eoa.address, tag) for tag in ("latest", "pending"))
    assert pending == latest + 1
    with pytest.raises(BundlerRPCError, match="stop here"):
        Owner(anvil.w3, eoa).send_user_op([Call(BEEF, 0, b"")], bundler=BundlerClient("http://b.invalid", transport=bundler))
    assert int(seen["eth_estimateUserOperationGas"]["eip7702Auth"]["nonce"], 16) == pending
