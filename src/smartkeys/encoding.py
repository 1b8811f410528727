"""Small pure encoders and input checks shared by the SDK. Nothing here touches the network.

Contents
--------
* input checks that raise :class:`~smartkeys.errors.InvalidInputError` naming the field:
  :func:`checked_address`, :func:`checked_uint`, :func:`checked_bytes`;
  JSON-RPC quantities: :func:`hex_quantity`, :func:`parse_quantity`;
* ERC-4337 ``validationData`` (EntryPoint v0.8 ``Helpers.sol``): :func:`pack_validation_data`,
  :func:`unpack_validation_data`, :func:`is_within_window`, :func:`validation_data_in_time_range`;
* EIP-7702 delegation designator: :func:`delegation_designator`, :func:`parse_delegation`;
* EntryPoint 2D nonces (``key << 64 | seq``): :func:`nonce_key_for`, :func:`pack_nonce`,
  :func:`unpack_nonce`.

validationData layout (uint256, EntryPoint v0.8)::

    bits   0..159   aggregator: 0 = signature ok, 1 = signature failed (SIG_VALIDATION_FAILED),
                    anything else = address of a signature aggregator
    bits 160..207   validUntil (uint48): last valid timestamp, inclusive; 0 means "no expiry"
                    and is read as 2**48 - 1
    bits 208..255   validAfter (uint48): the op is valid only AFTER this timestamp (exclusive)

The EntryPoint v0.8 time check (``EntryPoint._getValidationData``) is::

    if validationData == 0: in range
    else: outOfTimeRange = block.timestamp > validUntil || block.timestamp <= validAfter

i.e. valid iff ``validAfter < block.timestamp <= validUntil``. v0.7 used ``< validAfter``
(inclusive); v0.8 made validAfter exclusive. Note that the NatSpec of ``_packValidationData``
in ``Helpers.sol`` still calls validAfter the "first timestamp this UserOperation is valid",
which the EntryPoint's check contradicts: the first valid second is ``validAfter + 1``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

from eth_utils import to_checksum_address

from smartkeys.errors import InvalidInputError

__all__ = [
    "EIP7702_PREFIX",
    "MAX_UINT48",
    "SIG_VALIDATION_FAILED",
    "SIG_VALIDATION_SUCCESS",
    "ZERO_ADDRESS",
    "NonceParts",
    "ValidationData",
    "checked_address",
    "checked_bytes",
    "checked_uint",
    "delegation_designator",
    "hex_quantity",
    "is_within_window",
    "nonce_key_for",
    "pack_nonce",
    "pack_validation_data",
    "parse_delegation",
    "parse_quantity",
    "unpack_nonce",
    "unpack_validation_data",
    "validation_data_in_time_range",
]

MAX_UINT48 = 2**48 - 1
SIG_VALIDATION_SUCCESS = 0
SIG_VALIDATION_FAILED = 1
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
#: EIP-7702 delegation designator prefix: a delegated EOA's code is ``0xef0100 ‖ delegate``.
EIP7702_PREFIX = b"\xef\x01\x00"

_SIG_FAILED_ADDRESS = "0x0000000000000000000000000000000000000001"


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------

_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")


@lru_cache(maxsize=8192)
def _checksum_text(text: str) -> str | None:
    """EIP-55 form of a hex address string, or None if malformed or mis-checksummed."""
    if not _ADDRESS_RE.match(text):
        return None
    body = text[2:]
    checksummed = to_checksum_address(text)
    if body != body.lower() and body != body.upper() and checksummed != text:
        return None  # mixed case that is not the checksum: probably a typo
    return checksummed


def checked_address(value: Any, field: str, *, allow_zero: bool = True) -> str:
    """``value`` as an EIP-55 checksummed address, or :class:`InvalidInputError` naming ``field``.

    Accepts a 0x-prefixed 40-hex-digit string (all-lowercase, all-uppercase or correctly
    checksummed; mixed case with a wrong checksum is refused as a likely typo) or 20 raw bytes.

    >>> checked_address("0x" + "ab" * 20, "to")
    '0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB'
    >>> checked_address("0xABaBaBaBABabABabAbAbABAbABabababaBaBABab", "to")
    Traceback (most recent call last):
    ...
    smartkeys.errors.InvalidInputError: field 'to': expected an address (0x + 40 hex digits, valid EIP-55 checksum if mixed-case), got '0xABaBaBaBABabABabAbAbABAbABabababaBaBABab'; fix: copy the address again; a mixed-case address must match its EIP-55 checksum
    """
    result: str | None = None
    if isinstance(value, str):
        result = _checksum_text(value)
    elif isinstance(value, (bytes, bytearray, memoryview)) and len(value) == 20:
        result = to_checksum_address(bytes(value))
    if result is None:
        raise InvalidInputError(
            field, value,
            "an address (0x + 40 hex digits, valid EIP-55 checksum if mixed-case)",
            "copy the address again; a mixed-case address must match its EIP-55 checksum",
        )
    if not allow_zero and result == ZERO_ADDRESS:
        raise InvalidInputError(field, value, "a non-zero address", "pass the real address")
    return result


def checked_uint(value: Any, field: str, bits: int = 256) -> int:
    """``value`` if it is an ``int`` in ``[0, 2**bits)``; bools and strings are refused.

    >>> checked_uint(5, "nonce", 64)
    5
    >>> checked_uint(-1, "nonce", 64)
    Traceback (most recent call last):
    ...
    smartkeys.errors.InvalidInputError: field 'nonce': expected an integer in [0, 2**64 - 1], got -1; fix: pass a non-negative integer that fits in uint64
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value >> bits:
        hint = f"pass a non-negative integer that fits in uint{bits}"
        if isinstance(value, str):
            hint = "pass an int (use int(x, 16) for hex text)"
        raise InvalidInputError(field, value, f"an integer in [0, 2**{bits} - 1]", hint)
    return int(value)


def checked_bytes(value: Any, field: str, *, length: int | None = None) -> bytes:
    """``value`` as ``bytes``: accepts bytes-likes and 0x-prefixed hex strings.

    >>> checked_bytes("0x1234", "call_data")
    b'\\x124'
    """
    out: bytes | None = None
    if isinstance(value, bytes):
        out = bytes(value) if type(value) is not bytes else value
    elif isinstance(value, (bytearray, memoryview)):
        out = bytes(value)
    elif isinstance(value, str) and value[:2] in ("0x", "0X") and len(value) % 2 == 0:
        try:
            out = bytes.fromhex(value[2:])
        except ValueError:
            out = None
    if out is None:
        raise InvalidInputError(
            field, value, "bytes or a 0x-prefixed hex string with an even number of digits",
            "pass raw bytes, or hex like '0xabcd'",
        )
    if length is not None and len(out) != length:
        raise InvalidInputError(
            field, value, f"exactly {length} bytes", f"pass {length} bytes ({2 * length} hex digits)"
        )
    return out


def hex_quantity(value: int) -> str:
    """JSON-RPC quantity: ``0x``-hex without leading zeros (``0`` is ``"0x0"``).

    >>> hex_quantity(0), hex_quantity(255)
    ('0x0', '0xff')
    """
    return hex(value)


def parse_quantity(value: Any, field: str, bits: int = 256) -> int:
    """A JSON-RPC quantity (hex string, or an int) as ``int``, range-checked to ``uint<bits>``.

    >>> parse_quantity("0x1f", "nonce")
    31
    """
    if isinstance(value, str):
        text = value.strip()
        try:
            if text[:2] in ("0x", "0X"):
                value = int(text, 16) if len(text) > 2 else None
            else:
                value = int(text, 10)
        except ValueError:
            value = None
        if value is None:
            raise InvalidInputError(field, text, "a hex quantity like '0x1f'", "send 0x-prefixed hex")
    return checked_uint(value, field, bits)


# --------------------------------------------------------------------------------------------
# validationData
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValidationData:
    """Unpacked ERC-4337 validationData, as EntryPoint v0.8 ``_parseValidationData`` reads it.

    ``valid_until`` is already mapped the way the EntryPoint maps it: a packed 0 ("no expiry")
    becomes ``MAX_UINT48``. ``valid_after`` is exclusive: the op is valid when
    ``valid_after < block.timestamp <= valid_until``.
    """

    aggregator: str
    valid_after: int
    valid_until: int

    @property
    def sig_failed(self) -> bool:
        """True when the account reported SIG_VALIDATION_FAILED (aggregator == address(1))."""
        return self.aggregator == _SIG_FAILED_ADDRESS

    @property
    def uses_aggregator(self) -> bool:
        """True when the aggregator field names a real aggregator contract (neither 0 nor 1)."""
        return self.aggregator not in (ZERO_ADDRESS, _SIG_FAILED_ADDRESS)

    def is_valid_at(self, timestamp: int) -> bool:
        """The v0.8 time rule: ``valid_after < timestamp <= valid_until``."""
        return self.valid_after < timestamp <= self.valid_until


def pack_validation_data(
    sig_failed: bool, valid_until: int, valid_after: int, *, aggregator: str | None = None
) -> int:
    """EntryPoint v0.8 ``_packValidationData(sigFailed, validUntil, validAfter)``.

    ``sig_failed | validUntil << 160 | validAfter << 208``; with ``aggregator`` the low 160 bits
    hold that address instead (``sig_failed`` must then be False). ``valid_until = 0`` means no
    expiry. ``valid_after`` is exclusive (see the module docstring).

    >>> hex(pack_validation_data(False, valid_until=0x20, valid_after=0x10))
    '0x100000000000200000000000000000000000000000000000000000'
    >>> pack_validation_data(True, 0, 0)
    1
    """
    if not isinstance(sig_failed, bool):
        raise InvalidInputError("sig_failed", sig_failed, "True or False", "pass a bool")
    valid_until = checked_uint(valid_until, "valid_until", 48)
    valid_after = checked_uint(valid_after, "valid_after", 48)
    low = SIG_VALIDATION_FAILED if sig_failed else SIG_VALIDATION_SUCCESS
    if aggregator is not None:
        if sig_failed:
            raise InvalidInputError(
                "aggregator", aggregator, "None when sig_failed is True",
                "a failed signature is reported as aggregator address(1): drop aggregator",
            )
        low = int(checked_address(aggregator, "aggregator"), 16)
    return low | (valid_until << 160) | (valid_after << 208)


def unpack_validation_data(validation_data: int) -> ValidationData:
    """EntryPoint v0.8 ``_parseValidationData``: split a packed value (validUntil 0 -> 2**48-1).

    >>> vd = unpack_validation_data(pack_validation_data(True, 0, 7))
    >>> vd.sig_failed, vd.valid_after, vd.valid_until == MAX_UINT48
    (True, 7, True)
    """
    value = checked_uint(validation_data, "validation_data", 256)
    aggregator = to_checksum_address((value & (2**160 - 1)).to_bytes(20, "big"))
    valid_until = (value >> 160) & MAX_UINT48
    if valid_until == 0:
        valid_until = MAX_UINT48
    valid_after = (value >> 208) & MAX_UINT48
    return ValidationData(aggregator, valid_after, valid_until)


def is_within_window(timestamp: int, valid_after: int, valid_until: int) -> bool:
    """The EntryPoint v0.8 time rule for a (validAfter, validUntil) pair as packed on chain.

    True iff ``valid_after < timestamp <= valid_until``, with ``valid_until == 0`` meaning no
    expiry (2**48 - 1). validAfter is exclusive: at ``timestamp == valid_after`` the op is not
    yet valid; validUntil is inclusive: at ``timestamp == valid_until`` it still is.

    >>> is_within_window(100, 100, 200), is_within_window(101, 100, 200)
    (False, True)
    >>> is_within_window(200, 100, 200), is_within_window(201, 100, 200)
    (True, False)
    >>> is_within_window(10**9, 0, 0)
    True
    """
    timestamp = checked_uint(timestamp, "timestamp", 256)
    valid_after = checked_uint(valid_after, "valid_after", 48)
    valid_until = checked_uint(valid_until, "valid_until", 48) or MAX_UINT48
    return valid_after < timestamp <= valid_until


def validation_data_in_time_range(validation_data: int, timestamp: int) -> bool:
    """Exactly ``not outOfTimeRange`` of EntryPoint v0.8 ``_getValidationData``.

    A packed value of 0 is always in range (the EntryPoint returns early); otherwise the
    :func:`is_within_window` rule applies. The aggregator / signature bits are not considered.

    >>> validation_data_in_time_range(0, 0)
    True
    >>> validation_data_in_time_range(pack_validation_data(False, 0, 0), 0)
    True
    >>> validation_data_in_time_range(pack_validation_data(True, 0, 0), 0)
    False
    """
    value = checked_uint(validation_data, "validation_data", 256)
    if value == 0:
        return True
    parsed = unpack_validation_data(value)
    return parsed.is_valid_at(checked_uint(timestamp, "timestamp", 256))


# --------------------------------------------------------------------------------------------
# EIP-7702 delegation designator
# --------------------------------------------------------------------------------------------


def delegation_designator(address: Any) -> bytes:
    """The code a delegated EOA carries: ``0xef0100 ‖ address`` (23 bytes).

    >>> delegation_designator("0x" + "11" * 20).hex()
    'ef01001111111111111111111111111111111111111111'
    """
    return EIP7702_PREFIX + bytes.fromhex(checked_address(address, "address")[2:])


def parse_delegation(code: Any) -> str | None:
    """The delegate of an EIP-7702 delegated account, from its code; None if not delegated.

    Only exact designators count (23 bytes, ``0xef0100`` prefix); empty code, contract code and
    anything else give None. Accepts bytes (e.g. ``w3.eth.get_code(addr)``) or 0x-hex.

    >>> parse_delegation(bytes.fromhex("ef0100" + "22" * 20))
    '0x2222222222222222222222222222222222222222'
    >>> parse_delegation(b"") is None
    True
    """
    raw = checked_bytes(code, "code")
    if len(raw) != 23 or raw[:3] != EIP7702_PREFIX:
        return None
    return to_checksum_address(raw[3:])


# --------------------------------------------------------------------------------------------
# EntryPoint nonces
# --------------------------------------------------------------------------------------------


class NonceParts(NamedTuple):
    """An EntryPoint nonce split into its uint192 ``key`` and uint64 sequence ``seq``."""

    key: int
    seq: int


def nonce_key_for(address: Any) -> int:
    """A uint192 nonce key derived from an address: the address as an integer (160 bits).

    Giving each session key its own nonce lane lets several agents send ops in parallel.

    >>> hex(nonce_key_for("0x00000000000000000000000000000000000000ff"))
    '0xff'
    """
    return int(checked_address(address, "address"), 16)


def pack_nonce(key: int, seq: int) -> int:
    """``key << 64 | seq``, the EntryPoint's 2D nonce (``getNonce(sender, key)`` returns it).

    >>> hex(pack_nonce(1, 2))
    '0x10000000000000002'
    """
    return (checked_uint(key, "key", 192) << 64) | checked_uint(seq, "seq", 64)


def unpack_nonce(nonce: int) -> NonceParts:
    """Split an EntryPoint nonce into ``(key, seq)``.

    >>> unpack_nonce(pack_nonce(7, 9))
    NonceParts(key=7, seq=9)
    """
    value = checked_uint(nonce, "nonce", 256)
    return NonceParts(value >> 64, value & (2**64 - 1))
