"""``user_op_hash`` equals EntryPoint v0.8 ``getUserOpHash`` on chain, and signed ops validate.

Runs on the embedded local chain (``chain`` fixture: EntryPoint v0.8 and Simple7702Account at
their canonical addresses). Simple7702Account checks ``ECDSA.recover(userOpHash, signature) ==
address(this)``, so a successful ``handleOps`` proves the hash, the raw-hash (non-EIP-191)
signature, the low-s / v=27|28 encoding and ``to_abi_tuple`` all match what the chain expects.
"""

from __future__ import annotations

import pytest
from eth_abi import encode
from eth_utils import keccak
from web3.logs import DISCARD

from smartkeys import artifacts
from smartkeys.authorization import authorization_nonce, sign_authorization
from smartkeys.encoding import parse_delegation
from smartkeys.errors import FailedOp, FailedOpWithRevert, UnknownRevertError, decode_revert
from smartkeys.localchain import ENTRY_POINT_V08, SIMPLE7702_ADDRESS
from smartkeys.tx import revert_data_of
from smartkeys.userop import (
    EIP7702_FACTORY,
    PackedUserOperation,
    sign_user_op,
    user_op_hash,
)

RECIPIENT = "0x000000000000000000000000000000000000bEEF"


@pytest.fixture
def entry_point(chain):
    return chain.w3.eth.contract(ENTRY_POINT_V08, abi=artifacts.load("vendor/EntryPoint")["abi"])


def onchain_hash(entry_point, op: PackedUserOperation) -> bytes:
    return bytes(entry_point.functions.getUserOpHash(op.to_abi_tuple()).call())


def delegate_to_simple7702(chain, account) -> str:
    nonce = authorization_nonce(chain.w3.eth.get_transaction_count(account.address), self_sponsored=True)
    auth = sign_authorization(account, SIMPLE7702_ADDRESS, chain.chain_id, nonce)
    assert chain.send({"to": account.address, "authorizationList": [auth]}, account).status == 1
    delegate = parse_delegation(chain.w3.eth.get_code(account.address))
    assert delegate == SIMPLE7702_ADDRESS
    return delegate


def execute_call(target: str, value: int, data: bytes = b"") -> bytes:
    """Simple7702Account.execute(address,uint256,bytes) calldata."""
    return keccak(text="execute(address,uint256,bytes)")[:4] + encode(
        ["address", "uint256", "bytes"], [target, value, data])


def base_op(chain, sender: str, **overrides) -> PackedUserOperation:
    fee = 2 * (chain.w3.eth.get_block("latest").get("baseFeePerGas") or 0) + 10**9
    fields = dict(sender=sender, nonce=0, call_gas_limit=100_000, verification_gas_limit=200_000,
                  pre_verification_gas=50_000, max_fee_per_gas=fee, max_priority_fee_per_gas=10**9)
    fields.update(overrides)
    return PackedUserOperation(**fields)


def revert_data(exc: Exception) -> bytes:
    """Raw revert bytes from a revert exception, whichever backend raised it."""
    data = revert_data_of(exc)
    assert data, f"no revert data in {exc!r}"
    return data


def test_plain_op_hash_matches_get_user_op_hash(chain, entry_point):
    op = base_op(
        chain, chain.accounts[0].address, nonce=(123 << 64) | 7, call_data=b"\x01\x02\x03",
        factory="0x" + "fa" * 20, factory_data=b"\xde\xad\xbe\xef",
        paymaster="0x" + "bb" * 20, paymaster_verification_gas_limit=30_000,
        paymaster_post_op_gas_limit=20_000, paymaster_data=b"\x09" * 40, signature=b"\x11" * 65,
    )
    assert onchain_hash(entry_point, op) == user_op_hash(op, ENTRY_POINT_V08, chain.chain_id)
    minimal = PackedUserOperation(sender=chain.accounts[0].address)
    assert onchain_hash(entry_point, minimal) == user_op_hash(minimal, ENTRY_POINT_V08, chain.chain_id)


@pytest.mark.parametrize("factory_data", [b"", b"\x12\x34\x56\x78" * 9])
def test_7702_op_hash_matches_get_user_op_hash_on_a_delegated_eoa(chain, entry_point, factory_data):
    account = chain.accounts[1]
    delegate = delegate_to_simple7702(chain, account)
    op = base_op(chain, account.address, factory=EIP7702_FACTORY, factory_data=factory_data,
                 call_data=b"\xaa")
    ours = user_op_hash(op, ENTRY_POINT_V08, chain.chain_id, delegate=delegate)
    assert onchain_hash(entry_point, op) == ours
    plain = op.replace(factory=None, factory_data=b"")
    assert ours != user_op_hash(plain, ENTRY_POINT_V08, chain.chain_id)


def test_7702_hash_on_an_undelegated_eoa_reverts_on_chain(chain, entry_point):
    op = base_op(chain, chain.accounts[2].address, factory=EIP7702_FACTORY)
    with pytest.raises(Exception, match="sender has no code"):
        onchain_hash(entry_point, op)


def test_signed_op_from_a_delegated_eoa_executes_through_handle_ops(chain, entry_point):
    w3 = chain.w3
    account, bundler = chain.accounts[3], chain.accounts[4]
    delegate_to_simple7702(chain, account)
    nonce = entry_point.functions.getNonce(account.address, 0).call()
    op = base_op(chain, account.address, nonce=nonce, call_data=execute_call(RECIPIENT, 12345))
    signed = sign_user_op(op, account, ENTRY_POINT_V08, chain.chain_id)
    before = w3.eth.get_balance(RECIPIENT)
    data = entry_point.encode_abi("handleOps", args=[[signed.to_abi_tuple()], bundler.address])
    receipt = chain.send({"to": ENTRY_POINT_V08, "data": data}, bundler)
    assert receipt.status == 1
    events = entry_point.events.UserOperationEvent().process_receipt(receipt, errors=DISCARD)
    assert len(events) == 1 and events[0].args.success
    assert bytes(events[0].args.userOpHash) == user_op_hash(op, ENTRY_POINT_V08, chain.chain_id)
    assert w3.eth.get_balance(RECIPIENT) - before == 12345


def test_first_op_with_eip7702_auth_in_a_sponsored_type4_bundle(chain, entry_point):
    """What a bundler does with ``eip7702Auth``: type-4 handleOps carrying the authorization."""
    w3 = chain.w3
    account, bundler = chain.accounts[5], chain.accounts[6]
    assert w3.eth.get_code(account.address) == b""
    auth = sign_authorization(account, SIMPLE7702_ADDRESS, chain.chain_id,
                              authorization_nonce(w3.eth.get_transaction_count(account.address), False))
    op = base_op(chain, account.address, factory=EIP7702_FACTORY, eip7702_auth=auth,
                 call_data=execute_call(RECIPIENT, 1))
    signed = sign_user_op(op, account, ENTRY_POINT_V08, chain.chain_id)  # delegate from the auth
    data = entry_point.encode_abi("handleOps", args=[[signed.to_abi_tuple()], bundler.address])
    receipt = chain.send({"to": ENTRY_POINT_V08, "data": data, "authorizationList": [auth]}, bundler)
    assert receipt.status == 1
    events = entry_point.events.UserOperationEvent().process_receipt(receipt, errors=DISCARD)
    assert len(events) == 1 and events[0].args.success
    assert parse_delegation(w3.eth.get_code(account.address)) == SIMPLE7702_ADDRESS


def test_wrong_signer_reverts_with_failed_op_aa24_decoded(chain, entry_point):
    account, intruder = chain.accounts[7], chain.accounts[8]
    delegate_to_simple7702(chain, account)
    op = base_op(chain, account.address, call_data=execute_call(RECIPIENT, 1))
    forged = sign_user_op(op, intruder, ENTRY_POINT_V08, chain.chain_id)
    with pytest.raises(Exception) as info:
        entry_point.functions.handleOps([forged.to_abi_tuple()], intruder.address).call(
            {"from": intruder.address})
    err = decode_revert(revert_data(info.value))
    assert type(err) is FailedOp
    assert (err.op_index, err.code) == (0, "AA24")


def test_out_of_gas_validation_reverts_with_failed_op_with_revert_aa23_decoded(chain, entry_point):
    account = chain.accounts[9]
    delegate_to_simple7702(chain, account)
    op = sign_user_op(base_op(chain, account.address, verification_gas_limit=2_000),
                      account, ENTRY_POINT_V08, chain.chain_id)
    with pytest.raises(Exception) as info:
        entry_point.functions.handleOps([op.to_abi_tuple()], account.address).call({"from": account.address})
    err = decode_revert(revert_data(info.value))
    assert type(err) is FailedOpWithRevert
    assert err.code == "AA23" and isinstance(err.inner, UnknownRevertError) and err.inner.data == b""
