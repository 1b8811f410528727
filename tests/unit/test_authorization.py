"""smartkeys.authorization: signing, the chain-id-0 refusal, nonces, recovery, bundler JSON.

The authorization digest is recomputed here by hand (``0x05 ‖ rlp([...])`` with the rlp
package) and signatures are checked with eth_keys directly.
"""

from __future__ import annotations

import doctest

import pytest
import rlp
from eth_account import Account
from eth_keys import keys
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from smartkeys import authorization
from smartkeys.authorization import (
    SECP256K1_N,
    auth_from_rpc,
    auth_to_rpc,
    authorization_hash,
    authorization_nonce,
    recover_authority,
    sign_authorization,
    verify_authorization,
)
from smartkeys.errors import InvalidInputError

OWNER_KEY = keccak(b"smartkeys test owner")  # throwaway test key
OWNER = Account.from_key(OWNER_KEY)
OTHER = Account.from_key(keccak(b"smartkeys test other"))
DELEGATE = "0xe6Cae83BdE06E4c305530e199D7217f42808555B"
CHAIN_ID = 31337


def manual_authorization_hash(chain_id: int, address: str, nonce: int) -> bytes:
    return keccak(b"\x05" + rlp.encode([chain_id, bytes.fromhex(address[2:]), nonce]))


def test_doctests_pass():
    result = doctest.testmod(authorization)
    assert result.attempted >= 2 and result.failed == 0


@given(st.integers(0, 2**256 - 1), st.binary(min_size=20, max_size=20), st.integers(0, 2**64 - 1))
def test_authorization_hash_matches_manual_rlp(chain_id, address, nonce):
    address = "0x" + address.hex()
    assert authorization_hash(chain_id, address, nonce) == manual_authorization_hash(chain_id, address, nonce)


def test_sign_authorization_signs_the_eip7702_digest_with_low_s():
    signed = sign_authorization(OWNER, DELEGATE, CHAIN_ID, 5)
    digest = manual_authorization_hash(CHAIN_ID, DELEGATE, 5)
    assert bytes(signed.authorization_hash) == digest
    assert signed.s <= SECP256K1_N // 2
    assert signed.y_parity in (0, 1)
    public = keys.Signature(vrs=(signed.y_parity, signed.r, signed.s)).recover_public_key_from_msg_hash(digest)
    assert public.to_checksum_address() == OWNER.address
    assert recover_authority(signed) == OWNER.address
    assert (signed.chain_id, signed.nonce) == (CHAIN_ID, 5)


@settings(max_examples=25)
@given(st.integers(1, 2**64), st.integers(0, 2**64 - 2))
def test_every_signed_authorization_is_low_s_and_recovers(chain_id, nonce):
    signed = sign_authorization(OWNER_KEY, DELEGATE, chain_id, nonce)
    assert 0 < signed.s <= SECP256K1_N // 2
    assert recover_authority(signed) == OWNER.address


@pytest.mark.parametrize("key", [OWNER, OWNER_KEY, "0x" + OWNER_KEY.hex(), OWNER_KEY.hex(),
                                 int.from_bytes(OWNER_KEY, "big"), keys.PrivateKey(OWNER_KEY)])
def test_sign_authorization_accepts_every_key_form(key):
    assert recover_authority(sign_authorization(key, DELEGATE, CHAIN_ID, 0)) == OWNER.address


def test_chain_id_zero_is_refused_unless_asked_for_by_name():
    with pytest.raises(InvalidInputError) as info:
        sign_authorization(OWNER, DELEGATE, 0, 0)
    err = info.value
    assert err.field == "chain_id"
    assert "allow_any_chain=True" in str(err) and "every chain" in str(err)
    signed = sign_authorization(OWNER, DELEGATE, 0, 0, allow_any_chain=True)
    assert signed.chain_id == 0 and recover_authority(signed) == OWNER.address


def test_bad_key_error_never_shows_the_key():
    secret_hex = "ff" * 32  # >= group order: invalid
    with pytest.raises(InvalidInputError) as info:
        sign_authorization(secret_hex, DELEGATE, CHAIN_ID, 0)
    assert secret_hex not in str(info.value) and info.value.value is None
    with pytest.raises(InvalidInputError):
        sign_authorization(b"\x00" * 32, DELEGATE, CHAIN_ID, 0)
    with pytest.raises(InvalidInputError):
        sign_authorization("not a key", DELEGATE, CHAIN_ID, 0)


def test_sign_authorization_validates_delegate_and_nonce():
    with pytest.raises(InvalidInputError, match="'delegate'"):
        sign_authorization(OWNER, "0x1234", CHAIN_ID, 0)
    with pytest.raises(InvalidInputError, match="'nonce'"):
        sign_authorization(OWNER, DELEGATE, CHAIN_ID, 2**64 - 1)
    with pytest.raises(InvalidInputError, match="'nonce'"):
        sign_authorization(OWNER, DELEGATE, CHAIN_ID, -1)


def test_authorization_nonce_self_sponsored_is_current_plus_one():
    assert authorization_nonce(0, self_sponsored=True) == 1
    assert authorization_nonce(0, self_sponsored=False) == 0
    assert authorization_nonce(41, True) == 42
    with pytest.raises(InvalidInputError, match="self_sponsored"):
        authorization_nonce(1, "yes")
    with pytest.raises(InvalidInputError):
        authorization_nonce(2**64 - 2, True)


def test_rpc_json_round_trip_keeps_authority():
    signed = sign_authorization(OWNER, DELEGATE, CHAIN_ID, 7)
    wire = auth_to_rpc(signed)
    assert set(wire) == {"chainId", "address", "nonce", "yParity", "r", "s"}
    assert wire["chainId"] == hex(CHAIN_ID) and wire["nonce"] == "0x7" and wire["address"] == DELEGATE
    assert len(wire["r"]) == len(wire["s"]) == 66
    back = auth_from_rpc(wire)
    assert back == signed
    assert recover_authority(back) == OWNER.address
    assert auth_to_rpc(wire) == wire  # JSON in, same JSON out


def test_auth_from_rpc_accepts_alternative_spellings():
    signed = sign_authorization(OWNER, DELEGATE, CHAIN_ID, 7)
    wire = auth_to_rpc(signed)
    alt = {"contractAddress": wire["address"].lower(), "chainId": CHAIN_ID, "nonce": 7,
           "v": hex(27 + signed.y_parity), "r": hex(signed.r), "s": hex(signed.s)}
    assert auth_from_rpc(alt) == signed


def test_auth_from_rpc_names_missing_and_bad_fields():
    wire = auth_to_rpc(sign_authorization(OWNER, DELEGATE, CHAIN_ID, 7))
    for key in ("chainId", "nonce", "r", "s", "address"):
        broken = dict(wire)
        del broken[key]
        with pytest.raises(InvalidInputError, match=key):
            auth_from_rpc(broken)
    with pytest.raises(InvalidInputError, match="yParity"):
        auth_from_rpc(dict(wire, yParity="0x2"))


def test_recover_authority_refuses_high_s():
    signed = sign_authorization(OWNER, DELEGATE, CHAIN_ID, 7)
    wire = auth_to_rpc(signed)
    flipped = dict(wire, s=hex(SECP256K1_N - signed.s), yParity=hex(1 - signed.y_parity))
    # the flipped signature is mathematically valid for the same key ...
    malleable = auth_from_rpc(flipped)
    assert Account.from_key(OWNER_KEY).address == keys.Signature(
        vrs=(malleable.y_parity, malleable.r, malleable.s)
    ).recover_public_key_from_msg_hash(bytes(malleable.authorization_hash)).to_checksum_address()
    # ... but EIP-7702 skips it, so we refuse it
    with pytest.raises(InvalidInputError, match="high s"):
        recover_authority(flipped)


def test_verify_authorization_checks_each_expectation():
    signed = sign_authorization(OWNER, DELEGATE, CHAIN_ID, 3)
    assert verify_authorization(signed, authority=OWNER.address, chain_id=CHAIN_ID, nonce=3,
                                delegate=DELEGATE) == OWNER.address
    with pytest.raises(InvalidInputError, match="signed by"):
        verify_authorization(signed, authority=OTHER.address)
    with pytest.raises(InvalidInputError, match="chainId"):
        verify_authorization(signed, chain_id=1)
    with pytest.raises(InvalidInputError, match="skips"):
        verify_authorization(signed, nonce=4)
    with pytest.raises(InvalidInputError, match="delegate"):
        verify_authorization(signed, delegate=OTHER.address)
    any_chain = sign_authorization(OWNER, DELEGATE, 0, 3, allow_any_chain=True)
    with pytest.raises(InvalidInputError, match="every chain"):
        verify_authorization(any_chain, chain_id=CHAIN_ID)
    assert verify_authorization(any_chain, chain_id=CHAIN_ID, allow_any_chain=True) == OWNER.address


def test_signed_authorization_works_in_a_type4_transaction():
    signed = sign_authorization(OWNER, DELEGATE, CHAIN_ID, authorization_nonce(0, True))
    tx = {"chainId": CHAIN_ID, "nonce": 0, "gas": 100_000, "maxFeePerGas": 10**9,
          "maxPriorityFeePerGas": 10**9, "to": OWNER.address, "value": 0, "data": b"",
          "accessList": [], "authorizationList": [signed]}
    raw = OWNER.sign_transaction(tx).raw_transaction
    assert raw[0] == 4
    assert Account.recover_transaction(raw) == OWNER.address
