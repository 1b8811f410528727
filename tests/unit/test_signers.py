"""smartkeys.signers without a chain: the user-op typed data hashes to the userOpHash, signatures from any
BaseAccount are checked and normalized, JsonRpcSigner speaks to a loopback signer and refuses what it cannot do,
and the bundler seam normalizes its argument."""

from __future__ import annotations

import warnings

import pytest
from eth_account import Account
from eth_account.datastructures import SignedMessage
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_account.signers.base import BaseAccount
from eth_utils import keccak
from hexbytes import HexBytes
from loopback_signer import LoopbackSigner

from smartkeys.authorization import recover_authority, sign_authorization
from smartkeys.bundler import BundlerClient, SelfBundler, as_bundler
from smartkeys.errors import (
    InvalidInputError,
    NodeUnavailableError,
    SignerResponseError,
    SignerUnsupportedError,
)
from smartkeys.signers import JsonRpcSigner, as_signer, user_op_typed_data
from smartkeys.userop import (
    EIP7702_FACTORY,
    ENTRY_POINT_V08,
    PackedUserOperation,
    recover_user_op_signer,
    sign_user_op,
    user_op_hash,
)

CHAIN_ID = 31337
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
DELEGATE = "0x" + "ab" * 20


def op_for(sender: str, **kw) -> PackedUserOperation:
    return PackedUserOperation(sender=sender, nonce=(7 << 64) | 3, call_data=b"\x12\x34", call_gas_limit=90_000,
                               verification_gas_limit=150_000, pre_verification_gas=50_000,
                               max_fee_per_gas=3 * 10**9, max_priority_fee_per_gas=10**9, **kw)


class HighSAccount(BaseAccount):
    """Signs like a KMS that does not normalize s: every signature comes back with high s (still valid)."""

    def __init__(self) -> None:
        key = Account.create()
        self._address, self._key = key.address, key.key

    @property
    def address(self):
        return self._address

    def _high_s(self, digest: bytes) -> SignedMessage:
        low = Account._sign_hash(digest, self._key)
        s, v = N - low.s, 55 - low.v  # 27 <-> 28
        sig = low.r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((v,))
        return SignedMessage(message_hash=HexBytes(digest), r=low.r, s=s, v=v, signature=HexBytes(sig))

    def sign_message(self, signable_message):
        return self._high_s(_hash_eip191_message(signable_message))

    def unsafe_sign_hash(self, message_hash):
        return self._high_s(bytes(message_hash))

    def sign_transaction(self, transaction_dict, blobs=None):
        raise AssertionError("not used here")


@pytest.mark.parametrize("factory", [None, EIP7702_FACTORY])
def test_user_op_typed_data_hashes_to_the_entry_point_user_op_hash(factory):
    op = op_for("0x" + "11" * 20, factory=factory, factory_data=b"\x01\x02" if factory else b"")
    delegate = DELEGATE if factory else None
    message = encode_typed_data(full_message=user_op_typed_data(op, ENTRY_POINT_V08, CHAIN_ID, delegate))
    assert keccak(b"\x19\x01" + message.header + message.body) == user_op_hash(op, ENTRY_POINT_V08, CHAIN_ID, delegate)


def test_a_base_account_signs_the_same_user_op_signature_as_the_fast_path():
    key = Account.create()

    class Wrapped(BaseAccount):  # a LocalAccount behind the BaseAccount interface only
        address = key.address
        sign_message = staticmethod(key.sign_message)
        unsafe_sign_hash = staticmethod(key.unsafe_sign_hash)
        sign_transaction = staticmethod(key.sign_transaction)

    op = op_for(key.address)
    fast = sign_user_op(op, key, ENTRY_POINT_V08, CHAIN_ID)
    generic = sign_user_op(op, Wrapped(), ENTRY_POINT_V08, CHAIN_ID)
    assert generic.signature == fast.signature  # RFC 6979: deterministic, same key and digest
    assert recover_user_op_signer(generic, ENTRY_POINT_V08, CHAIN_ID) == key.address


def test_high_s_signatures_from_a_base_account_are_normalized_to_low_s():
    signer = HighSAccount()
    op = sign_user_op(op_for(signer.address), signer, ENTRY_POINT_V08, CHAIN_ID)
    assert int.from_bytes(op.signature[32:64], "big") <= N // 2
    assert recover_user_op_signer(op, ENTRY_POINT_V08, CHAIN_ID) == signer.address  # refuses high s itself
    auth = sign_authorization(signer, DELEGATE, CHAIN_ID, 5)
    assert auth.s <= N // 2 and recover_authority(auth) == signer.address


def test_a_signature_by_another_key_is_refused_with_the_addresses():
    signer, other = HighSAccount(), Account.create()
    signer.sign_message = lambda m: other.sign_message(m)  # answers for another account
    with pytest.raises(SignerResponseError) as info:
        sign_user_op(op_for(signer.address), signer, ENTRY_POINT_V08, CHAIN_ID)
    assert info.value.operation == "user operation"
    assert other.address in str(info.value) and signer.address in str(info.value)


def test_as_signer_refuses_a_raw_key_without_showing_it():
    key = Account.create()
    with pytest.raises(InvalidInputError) as info:
        as_signer(bytes(key.key), "account")
    assert info.value.field == "account" and bytes(key.key).hex() not in str(info.value)


@pytest.fixture
def loopback():
    key = Account.create()
    server = LoopbackSigner([key])
    yield server, key
    server.close()


def test_json_rpc_signer_signs_messages_and_typed_data_that_recover_to_its_address(loopback):
    from eth_account.messages import encode_defunct

    server, key = loopback
    for api, personal in (("eth", "personal_sign"), ("web3signer", "eth_sign"), ("clef", "account_signData")):
        signer = JsonRpcSigner(server.url, key.address, api=api)
        message = encode_defunct(text="hello")
        assert signer.sign_message(message).signature == key.sign_message(message).signature
        assert server.calls[-1] == personal
    op = op_for(key.address)
    signed = sign_user_op(op, JsonRpcSigner(server.url), ENTRY_POINT_V08, CHAIN_ID)
    assert signed.signature == sign_user_op(op, key, ENTRY_POINT_V08, CHAIN_ID).signature


def test_json_rpc_signer_refuses_raw_hashes_authorizations_and_hash_only_typed_data(loopback):
    server, key = loopback
    signer = JsonRpcSigner(server.url)
    before = list(server.calls)
    with pytest.raises(SignerUnsupportedError) as info:
        sign_authorization(signer, DELEGATE, CHAIN_ID, 0)
    assert info.value.operation == "EIP-7702 authorization" and "delegate once with the keystore key" in info.value.fix
    with pytest.raises(SignerUnsupportedError) as info:
        signer.unsafe_sign_hash(b"\x00" * 32)
    assert info.value.operation == "raw hash"
    typed = encode_typed_data(full_message=user_op_typed_data(op_for(key.address), ENTRY_POINT_V08, CHAIN_ID))
    with pytest.raises(SignerUnsupportedError) as info:
        signer.sign_message(typed)
    assert "sign_typed_data" in info.value.fix
    assert server.calls == before  # nothing was asked of the signer


def test_json_rpc_signer_checks_the_address_and_hides_the_url_path(loopback):
    server, key = loopback
    with pytest.raises(InvalidInputError) as info:
        JsonRpcSigner(server.url, Account.create().address)
    assert info.value.field == "address" and key.address in str(info.value)
    signer = JsonRpcSigner(server.url + "?token=s3cret")
    assert "s3cret" not in repr(signer) and signer.address in repr(signer)
    with pytest.raises(InvalidInputError):
        JsonRpcSigner(server.url, api="ledger")


def test_json_rpc_signer_reports_a_refusal_with_the_method_and_the_reason(loopback, monkeypatch):
    server, key = loopback
    signer = JsonRpcSigner(server.url)

    def refuse(method, params):
        server.calls.append(method)
        raise PermissionError("request denied by the user")

    monkeypatch.setattr(server, "answer", refuse)
    with pytest.raises(SignerResponseError) as info:
        sign_user_op(op_for(key.address), signer, ENTRY_POINT_V08, CHAIN_ID)
    assert "eth_signTypedData_v4" in str(info.value) and "request denied by the user" in str(info.value)
    with pytest.raises(SignerResponseError) as info:
        JsonRpcSigner(server.url)
    assert "eth_accounts" in str(info.value) and "address=None" in str(info.value)


def test_json_rpc_signer_that_is_not_running_raises_node_unavailable():
    server = LoopbackSigner([Account.create()])
    url = server.url
    server.close()
    with pytest.raises(NodeUnavailableError) as info:
        JsonRpcSigner(url, timeout=2)
    assert info.value.method == "eth_accounts" and "start the signer" in str(info.value)


def test_bundler_argument_is_one_seam_and_a_bare_account_is_a_self_bundler():
    relayer = Account.create()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        seam = as_bundler(relayer)
    assert isinstance(seam, SelfBundler) and seam.address == relayer.address and seam.via == "self_bundled"
    client = BundlerClient("http://127.0.0.1:1")
    assert as_bundler(client) is client and client.via == "bundler"
    explicit = SelfBundler(relayer)
    assert as_bundler(explicit) is explicit
    for bad in (None, "0x" + "11" * 20, bytes(relayer.key)):
        with pytest.raises(InvalidInputError) as info:
            as_bundler(bad)
        assert info.value.field == "bundler" and bytes(relayer.key).hex() not in str(info.value)
