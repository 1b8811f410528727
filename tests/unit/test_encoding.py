"""smartkeys.encoding: validationData, the 7702 designator, 2D nonces, input checks.

The bit layouts are checked against values assembled independently (eth_abi.encode_packed of
the Solidity field widths), and the time rule against a literal transcription of
EntryPoint v0.8 ``_getValidationData``.
"""

from __future__ import annotations

import doctest

import pytest
from eth_abi.packed import encode_packed
from hypothesis import given
from hypothesis import strategies as st

from smartkeys import encoding
from smartkeys.encoding import (
    MAX_UINT48,
    NonceParts,
    ValidationData,
    checked_address,
    checked_bytes,
    checked_uint,
    delegation_designator,
    is_within_window,
    nonce_key_for,
    pack_nonce,
    pack_validation_data,
    parse_delegation,
    parse_quantity,
    unpack_nonce,
    unpack_validation_data,
    validation_data_in_time_range,
)
from smartkeys.errors import InvalidInputError

uint48 = st.integers(0, MAX_UINT48)
addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())


def test_doctests_pass():
    result = doctest.testmod(encoding)
    assert result.attempted > 10 and result.failed == 0


# --------------------------------------------------------------------------- validationData


def _layout(valid_after: int, valid_until: int, aggregator: int) -> int:
    """uint256 as Solidity lays out (validAfter uint48 | validUntil uint48 | aggregator uint160)."""
    packed = encode_packed(["uint48", "uint48", "uint160"], [valid_after, valid_until, aggregator])
    assert len(packed) == 32
    return int.from_bytes(packed, "big")


@given(st.booleans(), uint48, uint48)
def test_pack_validation_data_matches_solidity_bit_layout(sig_failed, valid_until, valid_after):
    assert pack_validation_data(sig_failed, valid_until, valid_after) == _layout(
        valid_after, valid_until, int(sig_failed))


@given(addresses, uint48, uint48)
def test_pack_with_aggregator_puts_it_in_the_low_160_bits(aggregator, valid_until, valid_after):
    packed = pack_validation_data(False, valid_until, valid_after, aggregator=aggregator)
    assert packed == _layout(valid_after, valid_until, int(aggregator, 16))
    parsed = unpack_validation_data(packed)
    assert parsed.aggregator.lower() == aggregator


@given(st.booleans(), uint48, uint48)
def test_unpack_inverts_pack_with_zero_valid_until_read_as_max(sig_failed, valid_until, valid_after):
    parsed = unpack_validation_data(pack_validation_data(sig_failed, valid_until, valid_after))
    assert parsed.sig_failed is sig_failed
    assert parsed.valid_after == valid_after
    assert parsed.valid_until == (valid_until or MAX_UINT48)
    assert not parsed.uses_aggregator


@given(st.integers(0, 2**256 - 1))
def test_unpack_reads_every_uint256_like_parse_validation_data(value):
    parsed = unpack_validation_data(value)
    assert int(parsed.aggregator, 16) == value % 2**160
    until = (value >> 160) % 2**48
    assert parsed.valid_until == (until if until else 2**48 - 1)
    assert parsed.valid_after == value >> 208


def test_pack_refuses_out_of_range_and_wrong_types():
    with pytest.raises(InvalidInputError, match="valid_until"):
        pack_validation_data(False, 2**48, 0)
    with pytest.raises(InvalidInputError, match="valid_after"):
        pack_validation_data(False, 0, -1)
    with pytest.raises(InvalidInputError, match="sig_failed"):
        pack_validation_data(1, 0, 0)
    with pytest.raises(InvalidInputError, match="aggregator"):
        pack_validation_data(True, 0, 0, aggregator="0x" + "11" * 20)


def _entry_point_out_of_time_range(validation_data: int, timestamp: int) -> bool:
    """EntryPoint v0.8 _getValidationData, transcribed literally."""
    if validation_data == 0:
        return False
    valid_until = (validation_data >> 160) & (2**48 - 1)
    if valid_until == 0:
        valid_until = 2**48 - 1
    valid_after = (validation_data >> 208) & (2**48 - 1)
    return timestamp > valid_until or timestamp <= valid_after


@given(st.integers(0, 2**256 - 1), st.integers(0, 2**49))
def test_time_range_matches_entry_point_rule(validation_data, timestamp):
    assert validation_data_in_time_range(validation_data, timestamp) is (
        not _entry_point_out_of_time_range(validation_data, timestamp))


@given(uint48, uint48, st.integers(0, 2**49))
def test_is_within_window_matches_entry_point_rule(valid_after, valid_until, timestamp):
    packed = pack_validation_data(False, valid_until, valid_after)
    if packed == 0:
        return  # the EntryPoint's early return; covered separately
    assert is_within_window(timestamp, valid_after, valid_until) is (
        not _entry_point_out_of_time_range(packed, timestamp))


def test_valid_after_is_exclusive_and_valid_until_inclusive():
    assert not is_within_window(1000, valid_after=1000, valid_until=2000)
    assert is_within_window(1001, valid_after=1000, valid_until=2000)
    assert is_within_window(2000, valid_after=1000, valid_until=2000)
    assert not is_within_window(2001, valid_after=1000, valid_until=2000)
    assert is_within_window(2**40, valid_after=0, valid_until=0)  # 0 = no expiry
    assert ValidationData(encoding.ZERO_ADDRESS, 5, 10).is_valid_at(10)
    assert not ValidationData(encoding.ZERO_ADDRESS, 5, 10).is_valid_at(5)


def test_zero_validation_data_is_always_in_range_even_at_timestamp_zero():
    assert validation_data_in_time_range(0, 0)
    assert not is_within_window(0, 0, 0)  # the general rule (0 < ts) without the early return


def test_signature_failure_flag_is_aggregator_one():
    parsed = unpack_validation_data(encoding.SIG_VALIDATION_FAILED)
    assert parsed.sig_failed and parsed.aggregator == "0x" + "0" * 39 + "1"


# --------------------------------------------------------------------------- EIP-7702 designator


@given(addresses)
def test_delegation_designator_round_trips(address):
    code = delegation_designator(address)
    assert code == bytes.fromhex("ef0100") + bytes.fromhex(address[2:])
    assert len(code) == 23
    assert parse_delegation(code) == checked_address(address, "x")
    assert parse_delegation("0x" + code.hex()) == checked_address(address, "x")


@pytest.mark.parametrize("code", [b"", b"\x60\x80\x60\x40", bytes.fromhex("ef0100") + b"\x11" * 19,
                                  bytes.fromhex("ef0100") + b"\x11" * 21, bytes.fromhex("ef0200") + b"\x11" * 20])
def test_parse_delegation_returns_none_for_anything_but_a_designator(code):
    assert parse_delegation(code) is None


# --------------------------------------------------------------------------- nonces


@given(st.integers(0, 2**192 - 1), st.integers(0, 2**64 - 1))
def test_pack_nonce_round_trips(key, seq):
    nonce = pack_nonce(key, seq)
    assert nonce == int.from_bytes(encode_packed(["uint192", "uint64"], [key, seq]), "big")
    assert unpack_nonce(nonce) == NonceParts(key, seq)


@given(addresses)
def test_nonce_key_for_address_is_the_address_as_an_integer(address):
    key = nonce_key_for(address)
    assert key == int(address, 16) and key < 2**160
    assert unpack_nonce(pack_nonce(key, 3)).key == key


def test_pack_nonce_refuses_oversized_parts():
    with pytest.raises(InvalidInputError, match="'key'"):
        pack_nonce(2**192, 0)
    with pytest.raises(InvalidInputError, match="'seq'"):
        pack_nonce(0, 2**64)


# --------------------------------------------------------------------------- input checks


def test_checked_address_accepts_lowercase_bytes_and_checksum_and_refuses_bad_checksum():
    good = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
    assert checked_address(good.lower(), "a") == good
    assert checked_address(good, "a") == good
    assert checked_address(bytes.fromhex(good[2:]), "a") == good
    bad = good[:-1] + "b"  # flip the case of the last letter
    with pytest.raises(InvalidInputError, match="field 'to'.*EIP-55"):
        checked_address(bad, "to")
    for junk in ("0x1234", good[2:], 123, None, b"\x00" * 19):
        with pytest.raises(InvalidInputError):
            checked_address(junk, "to")
    with pytest.raises(InvalidInputError, match="non-zero"):
        checked_address("0x" + "00" * 20, "to", allow_zero=False)


def test_checked_uint_refuses_bools_strings_negatives_and_overflow():
    assert checked_uint(2**128 - 1, "g", 128) == 2**128 - 1
    for bad in (True, "5", -1, 2**128, 1.0):
        with pytest.raises(InvalidInputError):
            checked_uint(bad, "g", 128)


def test_checked_bytes_and_parse_quantity():
    assert checked_bytes("0xabcd", "d") == b"\xab\xcd"
    assert checked_bytes(bytearray(b"\x01"), "d") == b"\x01"
    for bad in ("abcd", "0xabc", "0xzz", 5):
        with pytest.raises(InvalidInputError):
            checked_bytes(bad, "d")
    with pytest.raises(InvalidInputError, match="exactly 32 bytes"):
        checked_bytes(b"\x00", "d", length=32)
    assert parse_quantity("0x0", "q") == 0 and parse_quantity(7, "q") == 7
    assert parse_quantity("0x00ff", "q") == 255
    for bad in ("0x", "zz", "0xg"):
        with pytest.raises(InvalidInputError):
            parse_quantity(bad, "q")
