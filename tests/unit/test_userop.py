"""smartkeys.userop: the packed user operation, its v0.8 hash, its signature, its wire forms.

Hashes are recomputed independently: with eth_account's EIP-712 encoder (``encode_typed_data``)
for plain ops, and with eth_abi.encode of ``UserOperationLib.encode``'s field list for the
EIP-7702 initCode override. Signatures are recovered with eth_keys.
"""

from __future__ import annotations

import os

import pytest
from eth_abi import decode, encode
from eth_abi.packed import encode_packed
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_keys import keys
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st
from web3 import Web3

from smartkeys import artifacts
from smartkeys.authorization import SECP256K1_N, auth_to_rpc, sign_authorization
from smartkeys.errors import InvalidInputError
from smartkeys.userop import (
    DUMMY_SIGNATURE,
    EIP7702_FACTORY,
    ENTRY_POINT_V08,
    MAX_GAS_VALUE,
    PACKED_USEROP_TYPEHASH,
    PackedUserOperation,
    domain_separator,
    recover_user_op_signer,
    sign_user_op,
    user_op_hash,
    user_op_struct_hash,
)

CHAIN_ID = 31337
OWNER = Account.from_key(keccak(b"smartkeys test owner"))  # throwaway test keys
SESSION = Account.from_key(keccak(b"smartkeys test session key"))
DELEGATE = "0xe6Cae83BdE06E4c305530e199D7217f42808555B"
PAYMASTER = "0x00000000000000000000000000000000000000AA"
HALF_N = SECP256K1_N // 2


def make_op(**overrides) -> PackedUserOperation:
    fields = dict(
        sender=OWNER.address,
        nonce=(0xABCD << 64) | 3,
        call_data=bytes.fromhex("b61d27f6") + bytes(96),
        call_gas_limit=100_000,
        verification_gas_limit=150_000,
        pre_verification_gas=50_000,
        max_fee_per_gas=2_000_000_000,
        max_priority_fee_per_gas=1_000_000_000,
    )
    fields.update(overrides)
    return PackedUserOperation(**fields)


# --------------------------------------------------------------------------- independent hashes


def typed_data_hash(op: PackedUserOperation, entry_point: str, chain_id: int) -> bytes:
    """userOpHash through eth_account's generic EIP-712 encoder (bytes fields hashed by it)."""
    message = encode_typed_data(full_message={
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "PackedUserOperation": [
                {"name": "sender", "type": "address"},
                {"name": "nonce", "type": "uint256"},
                {"name": "initCode", "type": "bytes"},
                {"name": "callData", "type": "bytes"},
                {"name": "accountGasLimits", "type": "bytes32"},
                {"name": "preVerificationGas", "type": "uint256"},
                {"name": "gasFees", "type": "bytes32"},
                {"name": "paymasterAndData", "type": "bytes"},
            ],
        },
        "primaryType": "PackedUserOperation",
        "domain": {"name": "ERC4337", "version": "1", "chainId": chain_id,
                   "verifyingContract": entry_point},
        "message": {
            "sender": op.sender, "nonce": op.nonce, "initCode": op.init_code,
            "callData": op.call_data, "accountGasLimits": op.account_gas_limits,
            "preVerificationGas": op.pre_verification_gas, "gasFees": op.gas_fees,
            "paymasterAndData": op.paymaster_and_data,
        },
    })
    return keccak(b"\x19" + message.version + message.header + message.body)


def abi_struct_hash(op: PackedUserOperation, init_code_hash: bytes) -> bytes:
    """UserOperationLib.encode with an explicit initCode hash, via eth_abi."""
    return keccak(encode(
        ["bytes32", "address", "uint256", "bytes32", "bytes32", "bytes32", "uint256", "bytes32", "bytes32"],
        [PACKED_USEROP_TYPEHASH, op.sender, op.nonce, init_code_hash, keccak(op.call_data),
         op.account_gas_limits, op.pre_verification_gas, op.gas_fees, keccak(op.paymaster_and_data)],
    ))


def test_typehash_is_the_entry_point_string():
    assert PACKED_USEROP_TYPEHASH == keccak(
        b"PackedUserOperation(address sender,uint256 nonce,bytes initCode,bytes callData,"
        b"bytes32 accountGasLimits,uint256 preVerificationGas,bytes32 gasFees,bytes paymasterAndData)")


def test_domain_separator_matches_eip712_encoder():
    expected = keccak(encode(
        ["bytes32", "bytes32", "bytes32", "uint256", "address"],
        [keccak(b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
         keccak(b"ERC4337"), keccak(b"1"), CHAIN_ID, ENTRY_POINT_V08]))
    assert domain_separator(ENTRY_POINT_V08, CHAIN_ID) == expected


def test_plain_op_hash_matches_eip712_typed_data_encoder():
    op = make_op(paymaster=PAYMASTER, paymaster_verification_gas_limit=30_000,
                 paymaster_post_op_gas_limit=10_000, paymaster_data=b"\x01\x02",
                 factory="0x" + "fa" * 20, factory_data=b"\xde\xad")
    assert user_op_hash(op, ENTRY_POINT_V08, CHAIN_ID) == typed_data_hash(op, ENTRY_POINT_V08, CHAIN_ID)


ops = st.builds(
    lambda nonce, call, gases, fees, pvg, factory, pm, sig: make_op(
        nonce=nonce, call_data=call, call_gas_limit=gases[0], verification_gas_limit=gases[1],
        max_fee_per_gas=fees[0], max_priority_fee_per_gas=fees[1], pre_verification_gas=pvg,
        factory=factory[0], factory_data=factory[1] if factory[0] else b"",
        paymaster=pm[0], paymaster_verification_gas_limit=pm[1] if pm[0] else 0,
        paymaster_post_op_gas_limit=pm[2] if pm[0] else 0, paymaster_data=pm[3] if pm[0] else b"",
        signature=sig),
    st.integers(0, 2**256 - 1),
    st.binary(max_size=200),
    st.tuples(st.integers(0, 2**128 - 1), st.integers(0, 2**128 - 1)),
    st.tuples(st.integers(0, 2**128 - 1), st.integers(0, 2**128 - 1)),
    st.integers(0, 2**256 - 1),
    st.tuples(st.one_of(st.none(), st.binary(min_size=20, max_size=20).filter(any).map(lambda b: "0x" + b.hex())),
              st.binary(max_size=64)),
    st.tuples(st.one_of(st.none(), st.binary(min_size=20, max_size=20).filter(any).map(lambda b: "0x" + b.hex())),
              st.integers(0, 2**128 - 1), st.integers(0, 2**128 - 1), st.binary(max_size=64)),
    st.binary(max_size=80),
)


@settings(max_examples=60)
@given(ops, st.integers(1, 2**64), st.binary(min_size=20, max_size=20).filter(any))
def test_any_op_hash_matches_eip712_typed_data_encoder(op, chain_id, entry_point):
    if op.is_eip7702:
        return
    entry_point = Web3.to_checksum_address(entry_point)
    assert user_op_hash(op, entry_point, chain_id) == typed_data_hash(op, entry_point, chain_id)


def test_signature_and_authorization_are_not_part_of_the_hash():
    op = make_op()
    h = user_op_hash(op, ENTRY_POINT_V08, CHAIN_ID)
    assert user_op_hash(op.replace(signature=b"\x01" * 65), ENTRY_POINT_V08, CHAIN_ID) == h


@pytest.mark.parametrize("change", [
    {"nonce": 4}, {"call_data": b"\x00"}, {"call_gas_limit": 1}, {"verification_gas_limit": 1},
    {"pre_verification_gas": 1}, {"max_fee_per_gas": 1}, {"max_priority_fee_per_gas": 1},
    {"factory": "0x" + "fa" * 20}, {"paymaster": PAYMASTER}, {"sender": SESSION.address},
])
def test_every_hashed_field_changes_the_hash(change):
    op = make_op()
    assert user_op_hash(op.replace(**change), ENTRY_POINT_V08, CHAIN_ID) != user_op_hash(op, ENTRY_POINT_V08, CHAIN_ID)


def test_hash_is_bound_to_chain_and_entry_point():
    op = make_op()
    h = user_op_hash(op, ENTRY_POINT_V08, CHAIN_ID)
    assert user_op_hash(op, ENTRY_POINT_V08, CHAIN_ID + 1) != h
    assert user_op_hash(op, "0x" + "11" * 20, CHAIN_ID) != h
    with pytest.raises(InvalidInputError, match="chain_id"):
        user_op_hash(op, ENTRY_POINT_V08, 0)
    with pytest.raises(InvalidInputError, match="entry_point"):
        user_op_hash(op, "0x1234", CHAIN_ID)


# --------------------------------------------------------------------------- EIP-7702 override


def test_7702_init_code_hash_is_replaced_by_delegate_hash():
    op = make_op(factory=EIP7702_FACTORY)
    assert op.init_code == bytes.fromhex("7702") + bytes(18)
    expected = keccak(b"\x19\x01" + domain_separator(ENTRY_POINT_V08, CHAIN_ID)
                      + abi_struct_hash(op, keccak(bytes.fromhex(DELEGATE[2:]))))
    assert user_op_hash(op, ENTRY_POINT_V08, CHAIN_ID, delegate=DELEGATE) == expected
    # and it is NOT the plain EIP-712 hash of the literal initCode
    assert expected != typed_data_hash(op, ENTRY_POINT_V08, CHAIN_ID)


def test_7702_init_code_with_data_hashes_delegate_followed_by_data():
    op = make_op(factory=EIP7702_FACTORY, factory_data=b"\x12\x34\x56")
    override = keccak(encode_packed(["address", "bytes"], [DELEGATE, b"\x12\x34\x56"]))
    assert user_op_struct_hash(op, DELEGATE) == abi_struct_hash(op, override)


def test_7702_hash_depends_on_the_delegate():
    op = make_op(factory=EIP7702_FACTORY)
    assert user_op_hash(op, ENTRY_POINT_V08, CHAIN_ID, DELEGATE) != user_op_hash(
        op, ENTRY_POINT_V08, CHAIN_ID, "0x" + "42" * 20)


def test_7702_init_code_without_delegate_is_refused():
    with pytest.raises(InvalidInputError) as info:
        user_op_hash(make_op(factory=EIP7702_FACTORY), ENTRY_POINT_V08, CHAIN_ID)
    assert info.value.field == "delegate" and "parse_delegation" in str(info.value)


def test_7702_delegate_defaults_to_the_attached_authorization():
    auth = sign_authorization(OWNER, DELEGATE, CHAIN_ID, 0)
    op = make_op(factory=EIP7702_FACTORY, eip7702_auth=auth)
    assert user_op_hash(op, ENTRY_POINT_V08, CHAIN_ID) == user_op_hash(
        make_op(factory=EIP7702_FACTORY), ENTRY_POINT_V08, CHAIN_ID, DELEGATE)
    with pytest.raises(InvalidInputError, match="delegate named by eip7702_auth"):
        user_op_hash(op, ENTRY_POINT_V08, CHAIN_ID, delegate="0x" + "42" * 20)


def test_non_7702_factory_ignores_delegate():
    op = make_op(factory="0x" + "fa" * 20)
    assert user_op_hash(op, ENTRY_POINT_V08, CHAIN_ID, DELEGATE) == user_op_hash(op, ENTRY_POINT_V08, CHAIN_ID)


def test_short_7702_marker_init_code_is_read_as_the_marker():
    packed = list(make_op().to_abi_tuple())
    packed[2] = bytes.fromhex("7702")
    op = PackedUserOperation.from_abi_tuple(packed)
    assert op.factory == EIP7702_FACTORY and op.factory_data == b""
    assert user_op_struct_hash(op, DELEGATE) == abi_struct_hash(op, keccak(bytes.fromhex(DELEGATE[2:])))


def test_authorization_must_be_signed_by_the_sender_and_match_the_chain():
    with pytest.raises(InvalidInputError, match="signed by the sender"):
        make_op(eip7702_auth=sign_authorization(SESSION, DELEGATE, CHAIN_ID, 0))
    with pytest.raises(InvalidInputError, match="factory"):
        make_op(factory="0x" + "fa" * 20, eip7702_auth=sign_authorization(OWNER, DELEGATE, CHAIN_ID, 0))
    op = make_op(eip7702_auth=sign_authorization(OWNER, DELEGATE, 1, 0))
    with pytest.raises(InvalidInputError, match="chainId"):
        user_op_hash(op, ENTRY_POINT_V08, CHAIN_ID)


# --------------------------------------------------------------------------- packing


@given(ops)
def test_packed_fields_match_solidity_layout(op):
    assert op.account_gas_limits == encode_packed(
        ["uint128", "uint128"], [op.verification_gas_limit, op.call_gas_limit])
    assert op.gas_fees == encode_packed(
        ["uint128", "uint128"], [op.max_priority_fee_per_gas, op.max_fee_per_gas])
    if op.paymaster is None:
        assert op.paymaster_and_data == b""
    else:
        assert op.paymaster_and_data == encode_packed(
            ["address", "uint128", "uint128", "bytes"],
            [op.paymaster, op.paymaster_verification_gas_limit, op.paymaster_post_op_gas_limit,
             op.paymaster_data])
    expected_init = b"" if op.factory is None else bytes.fromhex(op.factory[2:]) + op.factory_data
    assert op.init_code == expected_init


@given(ops)
def test_abi_tuple_round_trips(op):
    assert PackedUserOperation.from_abi_tuple(op.to_abi_tuple()) == op


@given(ops)
def test_rpc_round_trips(op):
    wire = op.to_rpc()
    assert PackedUserOperation.from_rpc(wire) == op
    assert ("factory" in wire) == ("factoryData" in wire) == (op.factory is not None)
    pm_keys = {"paymaster", "paymasterVerificationGasLimit", "paymasterPostOpGasLimit", "paymasterData"}
    assert (pm_keys <= set(wire)) == (op.paymaster is not None)
    assert not (pm_keys & set(wire)) or op.paymaster is not None
    assert "eip7702Auth" not in wire
    for key in ("nonce", "callGasLimit", "maxFeePerGas"):
        assert wire[key] == "0x0" or not wire[key].startswith("0x0")  # quantities: no leading zeros


def test_rpc_form_is_exactly_the_bundler_schema():
    auth = sign_authorization(OWNER, DELEGATE, CHAIN_ID, 0)
    op = make_op(factory=EIP7702_FACTORY, eip7702_auth=auth, paymaster=PAYMASTER,
                 paymaster_verification_gas_limit=1, paymaster_post_op_gas_limit=2, paymaster_data=b"\x03",
                 signature=DUMMY_SIGNATURE)
    wire = op.to_rpc()
    assert list(wire) == ["sender", "nonce", "factory", "factoryData", "callData", "callGasLimit",
                          "verificationGasLimit", "preVerificationGas", "maxFeePerGas",
                          "maxPriorityFeePerGas", "paymaster", "paymasterVerificationGasLimit",
                          "paymasterPostOpGasLimit", "paymasterData", "signature", "eip7702Auth"]
    assert wire["factory"] == "0x7702000000000000000000000000000000000000"
    assert wire["nonce"] == hex(op.nonce) and wire["paymasterPostOpGasLimit"] == "0x2"
    assert wire["eip7702Auth"] == auth_to_rpc(auth)
    assert PackedUserOperation.from_rpc(wire) == op


def test_from_rpc_accepts_short_marker_packed_forms_and_nulls():
    op = make_op(factory=EIP7702_FACTORY, paymaster=PAYMASTER, paymaster_verification_gas_limit=5,
                 paymaster_post_op_gas_limit=6, paymaster_data=b"\x07")
    wire = op.to_rpc()
    assert PackedUserOperation.from_rpc(dict(wire, factory="0x7702")) == op
    packed_style = {k: v for k, v in wire.items() if not k.startswith(("factory", "paymaster"))}
    packed_style.update(initCode="0x" + op.init_code.hex(), paymasterAndData="0x" + op.paymaster_and_data.hex())
    assert PackedUserOperation.from_rpc(packed_style) == op
    plain = make_op()
    assert PackedUserOperation.from_rpc(dict(plain.to_rpc(), factory=None, paymaster=None,
                                             factoryData=None, unknownField=1)) == plain
    with pytest.raises(InvalidInputError, match="'nonce'"):
        PackedUserOperation.from_rpc({k: v for k, v in plain.to_rpc().items() if k != "nonce"})


def test_to_abi_tuple_encodes_as_handle_ops_argument():
    ep = Web3().eth.contract(abi=artifacts.load("vendor/EntryPoint")["abi"])
    op = sign_user_op(make_op(paymaster=PAYMASTER, paymaster_verification_gas_limit=9, paymaster_data=b"\x01"),
                      SESSION, ENTRY_POINT_V08, CHAIN_ID)
    calldata = bytes.fromhex(ep.encode_abi("handleOps", args=[[op.to_abi_tuple()], OWNER.address])[2:])
    (decoded_ops, beneficiary) = decode(
        ["(address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes)[]", "address"], calldata[4:])
    assert PackedUserOperation.from_abi_tuple(decoded_ops[0]) == op
    assert calldata[:4] == keccak(
        b"handleOps((address,uint256,bytes,bytes,bytes32,uint256,bytes32,bytes,bytes)[],address)")[:4]


def test_max_gas_cost_is_the_entry_point_required_prefund():
    op = make_op(paymaster=PAYMASTER, paymaster_verification_gas_limit=30_000, paymaster_post_op_gas_limit=7_000)
    assert op.max_gas_cost() == (150_000 + 100_000 + 30_000 + 7_000 + 50_000) * 2_000_000_000
    assert make_op(max_fee_per_gas=0).max_gas_cost() == 0


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("change,field", [
    ({"sender": "0x" + "ab" * 19}, "sender"),
    ({"sender": "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB4b"}, "sender"),  # bad checksum
    ({"sender": "0x" + "00" * 20}, "sender"),
    ({"nonce": -1}, "nonce"),
    ({"call_gas_limit": 2**128}, "call_gas_limit"),
    ({"verification_gas_limit": True}, "verification_gas_limit"),
    ({"max_fee_per_gas": 2**128}, "max_fee_per_gas"),
    ({"max_priority_fee_per_gas": "1"}, "max_priority_fee_per_gas"),
    ({"pre_verification_gas": 2**256}, "pre_verification_gas"),
    ({"call_data": "not hex"}, "call_data"),
    ({"factory_data": b"\x01"}, "factory_data"),
    ({"paymaster_data": b"\x01"}, "paymaster"),
    ({"paymaster_verification_gas_limit": 1}, "paymaster"),
    ({"paymaster": "0x" + "00" * 20}, "paymaster"),
    ({"paymaster": PAYMASTER, "paymaster_post_op_gas_limit": 2**128}, "paymaster_post_op_gas_limit"),
    ({"eip7702_auth": "0x1234"}, "eip7702_auth"),
])
def test_construction_refuses_bad_fields_naming_them(change, field):
    with pytest.raises(InvalidInputError) as info:
        make_op(**change)
    assert info.value.field == field
    assert "expected" in str(info.value) and "got" in str(info.value)


def test_construction_normalizes_addresses_and_hex():
    op = make_op(sender=OWNER.address.lower(), call_data="0xabcd", paymaster=PAYMASTER.lower())
    assert op.sender == OWNER.address and op.paymaster == PAYMASTER and op.call_data == b"\xab\xcd"
    with pytest.raises(TypeError):
        PackedUserOperation(OWNER.address)  # keyword-only construction
    with pytest.raises(InvalidInputError, match="'nonce'"):
        make_op().replace(nonce=-5)  # replace validates too


# --------------------------------------------------------------------------- signing


def recover_raw(digest: bytes, signature: bytes) -> str:
    v = signature[64]
    return keys.Signature(vrs=(v - 27, int.from_bytes(signature[:32], "big"),
                               int.from_bytes(signature[32:64], "big"))
                          ).recover_public_key_from_msg_hash(digest).to_checksum_address()


def test_sign_user_op_signs_the_raw_hash_low_s_with_v_27_28():
    op = make_op()
    signed = sign_user_op(op, SESSION, ENTRY_POINT_V08, CHAIN_ID)
    sig = signed.signature
    assert len(sig) == 65 and sig[64] in (27, 28)
    assert int.from_bytes(sig[32:64], "big") <= HALF_N
    digest = user_op_hash(op, ENTRY_POINT_V08, CHAIN_ID)
    assert recover_raw(digest, sig) == SESSION.address
    # not EIP-191: recovering the prefixed message gives someone else
    assert Account.recover_message(encode_defunct(primitive=digest), signature=sig) != SESSION.address
    assert recover_user_op_signer(signed, ENTRY_POINT_V08, CHAIN_ID) == SESSION.address
    assert signed.replace(signature=b"") == op  # nothing else changed
    assert op.signature == b""  # the input is untouched


def test_signature_matches_eth_account_signing_the_same_hash():
    op = make_op()
    digest = user_op_hash(op, ENTRY_POINT_V08, CHAIN_ID)
    reference = Account._sign_hash(digest, SESSION.key)  # RFC 6979: same deterministic signature
    assert sign_user_op(op, SESSION, ENTRY_POINT_V08, CHAIN_ID).signature == bytes(reference.signature)


@settings(max_examples=200)
@given(st.integers(0, 2**256 - 1), st.binary(max_size=64))
def test_signatures_are_always_low_s_and_recover(nonce, call_data):
    op = make_op(nonce=nonce, call_data=call_data)
    sig = sign_user_op(op, SESSION, ENTRY_POINT_V08, CHAIN_ID).signature
    assert 0 < int.from_bytes(sig[32:64], "big") <= HALF_N
    assert recover_raw(user_op_hash(op, ENTRY_POINT_V08, CHAIN_ID), sig) == SESSION.address


@pytest.mark.parametrize("key", [SESSION, SESSION.key, bytes(SESSION.key), "0x" + bytes(SESSION.key).hex(),
                                 keys.PrivateKey(bytes(SESSION.key))])
def test_sign_user_op_accepts_every_key_form(key):
    import coincurve

    op = make_op()
    expected = sign_user_op(op, coincurve.PrivateKey(bytes(SESSION.key)), ENTRY_POINT_V08, CHAIN_ID)
    assert sign_user_op(op, key, ENTRY_POINT_V08, CHAIN_ID) == expected


def test_sign_user_op_7702_binds_the_delegate():
    op = make_op(factory=EIP7702_FACTORY)
    signed = sign_user_op(op, OWNER, ENTRY_POINT_V08, CHAIN_ID, delegate=DELEGATE)
    assert recover_user_op_signer(signed, ENTRY_POINT_V08, CHAIN_ID, DELEGATE) == OWNER.address
    assert recover_user_op_signer(signed, ENTRY_POINT_V08, CHAIN_ID, "0x" + "42" * 20) != OWNER.address
    with pytest.raises(InvalidInputError, match="delegate"):
        sign_user_op(op, OWNER, ENTRY_POINT_V08, CHAIN_ID)


def test_sign_user_op_refuses_gas_values_the_entry_point_rejects():
    op = make_op(call_gas_limit=MAX_GAS_VALUE + 1)
    with pytest.raises(InvalidInputError, match="AA94") as info:
        sign_user_op(op, SESSION, ENTRY_POINT_V08, CHAIN_ID)
    assert info.value.field == "call_gas_limit"
    sign_user_op(op.replace(call_gas_limit=MAX_GAS_VALUE), SESSION, ENTRY_POINT_V08, CHAIN_ID)


def test_bad_signing_key_error_does_not_leak_it():
    secret = "0x" + "ff" * 32
    with pytest.raises(InvalidInputError) as info:
        sign_user_op(make_op(), secret, ENTRY_POINT_V08, CHAIN_ID)
    assert "ff" * 32 not in str(info.value) and info.value.value is None


def test_recover_user_op_signer_refuses_what_openzeppelin_ecdsa_refuses():
    signed = sign_user_op(make_op(), SESSION, ENTRY_POINT_V08, CHAIN_ID)
    sig = signed.signature
    s = int.from_bytes(sig[32:64], "big")
    high_s = sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - sig[64]])
    assert recover_raw(user_op_hash(signed, ENTRY_POINT_V08, CHAIN_ID), high_s) == SESSION.address
    for bad in (high_s, sig[:64] + b"\x01", sig[:64], b""):
        with pytest.raises(InvalidInputError, match="signature"):
            recover_user_op_signer(signed.replace(signature=bad), ENTRY_POINT_V08, CHAIN_ID)


# --------------------------------------------------------------------------- dummy signature


def test_dummy_signature_is_low_s_and_recovers_to_a_nonzero_address_for_any_hash():
    assert len(DUMMY_SIGNATURE) == 65 and DUMMY_SIGNATURE[64] in (27, 28)
    r = int.from_bytes(DUMMY_SIGNATURE[:32], "big")
    s = int.from_bytes(DUMMY_SIGNATURE[32:64], "big")
    assert 0 < r < SECP256K1_N and 0 < s <= HALF_N
    assert sum(b == 0 for b in DUMMY_SIGNATURE) < 4  # calldata-cost representative
    recovered = set()
    for _ in range(50):
        address = recover_raw(os.urandom(32), DUMMY_SIGNATURE)
        assert int(address, 16) != 0
        recovered.add(address)
    assert len(recovered) == 50
    op = make_op(signature=DUMMY_SIGNATURE)
    assert recover_user_op_signer(op, ENTRY_POINT_V08, CHAIN_ID) != SESSION.address
