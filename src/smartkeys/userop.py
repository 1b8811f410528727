"""ERC-4337 EntryPoint v0.8 user operations: the packed struct, its hash, and its signature.

Everything here is pure (no network). The hash is EntryPoint v0.8 ``getUserOpHash``::

    userOpHash = keccak(0x1901 ‖ domainSeparator ‖ structHash)
    domainSeparator = keccak(abi.encode(
        keccak("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
        keccak("ERC4337"), keccak("1"), chainId, entryPoint))
    structHash = keccak(abi.encode(PACKED_USEROP_TYPEHASH, sender, nonce, keccak(initCode),
        keccak(callData), accountGasLimits, preVerificationGas, gasFees, keccak(paymasterAndData)))

The signature is not part of the hash. EIP-7702 rule (``Eip7702Support``): when ``initCode``
starts with the marker ``0x7702`` zero-padded to 20 bytes, ``keccak(initCode)`` is replaced by
``keccak(delegate ‖ initCode[20:])`` where ``delegate`` is the address in the sender's current
code (``0xef0100 ‖ delegate``) -- read from chain by the EntryPoint, so the caller must supply
it (or attach the ``eip7702_auth`` that will set it).

Packed fields (``UserOperationLib``)::

    accountGasLimits = verificationGasLimit << 128 | callGasLimit          (bytes32)
    gasFees          = maxPriorityFeePerGas << 128 | maxFeePerGas          (bytes32)
    paymasterAndData = paymaster (20) ‖ uint128 pmVerificationGasLimit (16)
                       ‖ uint128 pmPostOpGasLimit (16) ‖ paymasterData
    initCode         = factory (20) ‖ factoryData

The EntryPoint additionally requires every gas limit and fee to be <= 2**120 - 1 (``AA94``);
:func:`sign_user_op` refuses larger values before signing.
"""

from __future__ import annotations

import dataclasses
import weakref
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import coincurve
from eth_account.datastructures import SignedSetCodeAuthorization
from eth_account.signers.base import BaseAccount
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address

from smartkeys._secrets import secret_frames_dropped
from smartkeys.authorization import (
    SECP256K1_N,
    _secret_bytes,
    as_signed_authorization,
    auth_from_rpc,
    auth_to_rpc,
    recover_authority,
)
from smartkeys.deployments import ENTRY_POINT_V08
from smartkeys.encoding import (
    checked_address,
    checked_bytes,
    checked_uint,
    hex_quantity,
    parse_quantity,
)
from smartkeys.errors import InvalidInputError, SmartKeysError

__all__ = [
    "DOMAIN_NAME",
    "DOMAIN_VERSION",
    "DUMMY_SIGNATURE",
    "EIP7702_FACTORY",
    "ENTRY_POINT_V08",
    "INITCODE_EIP7702_MARKER",
    "MAX_GAS_VALUE",
    "PACKED_USEROP_TYPEHASH",
    "PackedUserOperation",
    "domain_separator",
    "recover_user_op_signer",
    "sign_user_op",
    "user_op_hash",
    "user_op_struct_hash",
]

#: ``factory`` value marking an EIP-7702 account: ``0x7702`` padded to 20 bytes.
EIP7702_FACTORY = "0x7702000000000000000000000000000000000000"
INITCODE_EIP7702_MARKER = bytes.fromhex("7702") + bytes(18)
DOMAIN_NAME = "ERC4337"
DOMAIN_VERSION = "1"
PACKED_USEROP_TYPEHASH = keccak(
    text="PackedUserOperation(address sender,uint256 nonce,bytes initCode,bytes callData,"
    "bytes32 accountGasLimits,uint256 preVerificationGas,bytes32 gasFees,bytes paymasterAndData)"
)
_EIP712_DOMAIN_TYPEHASH = keccak(
    text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
#: EntryPoint v0.8 rejects any gas limit or fee above this with ``AA94 gas values overflow``.
MAX_GAS_VALUE = 2**120 - 1

#: A fixed 65-byte ``r ‖ s ‖ v`` signature for gas estimation. It is low-s (OpenZeppelin's
#: ECDSA rejects high s, which would make estimation fail with AA23) and its ``r`` is a valid
#: curve x-coordinate, so ``ecrecover`` returns some non-zero address for any hash: validation
#: runs its full path and returns SIG_VALIDATION_FAILED instead of reverting. Nearly every byte
#: is non-zero, like a real signature, so calldata gas is estimated correctly.
DUMMY_SIGNATURE = bytes.fromhex(
    "e3cacca2affa8dd0b4763ba3f226934f33509d2c422659f066c11cc542fb9158"
    "6453bedde216c5f8b1c95e4474e7743c2c029db0829206db05c3220e1f90cf25"
    "1b"
)

_HALF_N = SECP256K1_N // 2
_U128 = 128
_GAS_FIELDS = (
    "call_gas_limit",
    "verification_gas_limit",
    "pre_verification_gas",
    "max_fee_per_gas",
    "max_priority_fee_per_gas",
    "paymaster_verification_gas_limit",
    "paymaster_post_op_gas_limit",
)


def _addr_bytes(address: str) -> bytes:
    """20 raw bytes of a (validated, checksummed) address string."""
    return bytes.fromhex(address[2:])


@lru_cache(maxsize=1024)
def _authority_of(auth_key: tuple[int, bytes, int, int, int, int]) -> str:
    """Cached authority recovery keyed by the authorization tuple (recovery costs ~0.1 ms)."""
    chain_id, address, nonce, y_parity, r, s = auth_key
    return recover_authority(
        {
            "chainId": chain_id, "address": "0x" + address.hex(), "nonce": nonce,
            "yParity": y_parity, "r": r, "s": s,
        }
    )


def _auth_key(auth: SignedSetCodeAuthorization) -> tuple[int, bytes, int, int, int, int]:
    """Hashable identity of an authorization tuple."""
    return (auth.chain_id, bytes(auth.address), auth.nonce, auth.y_parity, auth.r, auth.s)


@dataclass(frozen=True, kw_only=True)
class PackedUserOperation:
    """An ERC-4337 v0.7/v0.8 user operation, with unpacked snake_case fields.

    Construct with keywords; values are checked on construction and every error names the
    field. Addresses are stored EIP-55 checksummed (lowercase input is accepted, mixed case
    must be a valid checksum); byte fields accept bytes or 0x-hex; gas limits and fees must
    fit their packed width (uint128), ``nonce`` and ``pre_verification_gas`` uint256.

    ``factory`` None means no initCode (then ``factory_data`` must be empty); the EIP-7702
    marker :data:`EIP7702_FACTORY` makes the op hash bind the sender's delegate. ``paymaster``
    None means no paymaster (then the paymaster fields must be zero/empty).
    ``eip7702_auth`` is an authorization signed by the sender (it is sent to the bundler,
    which includes it in its type-4 bundle transaction; it is not part of the hash).

    The packed on-chain forms are derived properties: :attr:`init_code`,
    :attr:`account_gas_limits`, :attr:`gas_fees`, :attr:`paymaster_and_data`.
    """

    sender: str
    nonce: int = 0
    factory: str | None = None
    factory_data: bytes = b""
    call_data: bytes = b""
    call_gas_limit: int = 0
    verification_gas_limit: int = 0
    pre_verification_gas: int = 0
    max_fee_per_gas: int = 0
    max_priority_fee_per_gas: int = 0
    paymaster: str | None = None
    paymaster_verification_gas_limit: int = 0
    paymaster_post_op_gas_limit: int = 0
    paymaster_data: bytes = b""
    signature: bytes = b""
    eip7702_auth: SignedSetCodeAuthorization | None = field(default=None, compare=True)

    def __post_init__(self) -> None:
        """Validate and normalize every field (InvalidInputError names the bad one)."""
        setter = object.__setattr__
        setter(self, "sender", checked_address(self.sender, "sender", allow_zero=False))
        setter(self, "nonce", checked_uint(self.nonce, "nonce", 256))
        for name in _GAS_FIELDS:
            bits = 256 if name == "pre_verification_gas" else _U128
            setter(self, name, checked_uint(getattr(self, name), name, bits))
        for name in ("factory_data", "call_data", "paymaster_data", "signature"):
            value = getattr(self, name)
            if type(value) is not bytes:
                setter(self, name, checked_bytes(value, name))

        if self.factory is None:
            if self.factory_data:
                raise InvalidInputError(
                    "factory_data", self.factory_data, "empty bytes when factory is None",
                    "set factory (or EIP7702_FACTORY for a 7702 account), or drop factory_data",
                )
        else:
            setter(self, "factory", checked_address(self.factory, "factory", allow_zero=False))

        if self.paymaster is None:
            if (self.paymaster_verification_gas_limit or self.paymaster_post_op_gas_limit
                    or self.paymaster_data):
                raise InvalidInputError(
                    "paymaster", None,
                    "a paymaster address when paymaster gas limits or paymaster_data are set",
                    "set paymaster, or zero the paymaster fields",
                )
        else:
            setter(
                self, "paymaster",
                checked_address(self.paymaster, "paymaster", allow_zero=False),
            )

        if self.eip7702_auth is not None:
            auth = as_signed_authorization(self.eip7702_auth)
            setter(self, "eip7702_auth", auth)
            if self.factory is not None and self.factory != EIP7702_FACTORY:
                raise InvalidInputError(
                    "factory", self.factory, f"None or {EIP7702_FACTORY} when eip7702_auth is set",
                    "a delegated EOA is not created by a factory: drop factory or use the marker",
                )
            authority = _authority_of(_auth_key(auth))
            if authority != self.sender:
                raise InvalidInputError(
                    "eip7702_auth", f"an authorization signed by {authority}",
                    f"an authorization signed by the sender {self.sender}",
                    "sign the authorization with the sender's (the EOA owner's) key",
                )

    # ---- derived packed fields ----------------------------------------------------------

    @property
    def is_eip7702(self) -> bool:
        """True when initCode carries the EIP-7702 marker (the hash then binds the delegate)."""
        return self.factory == EIP7702_FACTORY

    @property
    def init_code(self) -> bytes:
        """``factory ‖ factory_data``, or empty when there is no factory."""
        if self.factory is None:
            return b""
        return _addr_bytes(self.factory) + self.factory_data

    @property
    def account_gas_limits(self) -> bytes:
        """bytes32 ``verificationGasLimit << 128 | callGasLimit``."""
        return ((self.verification_gas_limit << 128) | self.call_gas_limit).to_bytes(32, "big")

    @property
    def gas_fees(self) -> bytes:
        """bytes32 ``maxPriorityFeePerGas << 128 | maxFeePerGas``."""
        return ((self.max_priority_fee_per_gas << 128) | self.max_fee_per_gas).to_bytes(32, "big")

    @property
    def paymaster_and_data(self) -> bytes:
        """``paymaster ‖ uint128 pmVerificationGas ‖ uint128 pmPostOpGas ‖ paymasterData``."""
        if self.paymaster is None:
            return b""
        return (
            _addr_bytes(self.paymaster)
            + self.paymaster_verification_gas_limit.to_bytes(16, "big")
            + self.paymaster_post_op_gas_limit.to_bytes(16, "big")
            + self.paymaster_data
        )

    def max_gas_cost(self) -> int:
        """The prefund the EntryPoint requires (``_getRequiredPrefund``), in wei.

        ``(verificationGasLimit + callGasLimit + paymasterVerificationGasLimit
        + paymasterPostOpGasLimit + preVerificationGas) * maxFeePerGas``: the most this op can
        cost its payer.
        """
        return (
            self.verification_gas_limit
            + self.call_gas_limit
            + self.paymaster_verification_gas_limit
            + self.paymaster_post_op_gas_limit
            + self.pre_verification_gas
        ) * self.max_fee_per_gas

    # ---- conversions ----------------------------------------------------------------------

    def replace(self, **changes: Any) -> PackedUserOperation:
        """A copy with ``changes`` applied (and validated), like ``dataclasses.replace``."""
        return dataclasses.replace(self, **changes)

    def to_abi_tuple(self) -> tuple[Any, ...]:
        """The on-chain ``PackedUserOperation`` struct as a tuple, e.g. for ``handleOps``.

        Order: sender, nonce, initCode, callData, accountGasLimits, preVerificationGas,
        gasFees, paymasterAndData, signature.
        """
        return (
            self.sender,
            self.nonce,
            self.init_code,
            self.call_data,
            self.account_gas_limits,
            self.pre_verification_gas,
            self.gas_fees,
            self.paymaster_and_data,
            self.signature,
        )

    @classmethod
    def from_abi_tuple(
        cls, packed: Any, *, eip7702_auth: Any = None
    ) -> PackedUserOperation:
        """Unpack an on-chain struct (tuple/list in struct order, or a dict with its names).

        A short EIP-7702 initCode (``0x7702`` with fewer than 20 bytes) becomes the full
        20-byte marker with empty factory_data; the EntryPoint treats both alike.
        """
        if isinstance(packed, dict):
            keys = ("sender", "nonce", "initCode", "callData", "accountGasLimits",
                    "preVerificationGas", "gasFees", "paymasterAndData", "signature")
            packed = tuple(packed[k] for k in keys)
        if not isinstance(packed, (tuple, list)) or len(packed) != 9:
            raise InvalidInputError(
                "packed", packed, "a 9-field PackedUserOperation tuple",
                "pass the struct in on-chain order",
            )
        (sender, nonce, init_code, call_data, account_gas_limits, pre_verification_gas,
         gas_fees, paymaster_and_data, signature) = packed
        factory, factory_data = _split_init_code(checked_bytes(init_code, "initCode"))
        agl = int.from_bytes(checked_bytes(account_gas_limits, "accountGasLimits", length=32), "big")
        fees = int.from_bytes(checked_bytes(gas_fees, "gasFees", length=32), "big")
        pm = _split_paymaster_and_data(checked_bytes(paymaster_and_data, "paymasterAndData"))
        return cls(
            sender=sender,
            nonce=nonce,
            factory=factory,
            factory_data=factory_data,
            call_data=call_data,
            verification_gas_limit=agl >> 128,
            call_gas_limit=agl & (2**128 - 1),
            pre_verification_gas=pre_verification_gas,
            max_priority_fee_per_gas=fees >> 128,
            max_fee_per_gas=fees & (2**128 - 1),
            paymaster=pm[0],
            paymaster_verification_gas_limit=pm[1],
            paymaster_post_op_gas_limit=pm[2],
            paymaster_data=pm[3],
            signature=signature,
            eip7702_auth=eip7702_auth,
        )

    def to_rpc(self) -> dict[str, Any]:
        """The ERC-4337 bundler JSON-RPC form (v0.7/v0.8): camelCase, unpacked, hex quantities.

        Absent optional groups are omitted: ``factory``/``factoryData`` without a factory,
        the four paymaster fields without a paymaster, ``eip7702Auth`` without one.
        """
        out: dict[str, Any] = {
            "sender": self.sender,
            "nonce": hex_quantity(self.nonce),
        }
        if self.factory is not None:
            out["factory"] = self.factory
            out["factoryData"] = "0x" + self.factory_data.hex()
        out.update(
            callData="0x" + self.call_data.hex(),
            callGasLimit=hex_quantity(self.call_gas_limit),
            verificationGasLimit=hex_quantity(self.verification_gas_limit),
            preVerificationGas=hex_quantity(self.pre_verification_gas),
            maxFeePerGas=hex_quantity(self.max_fee_per_gas),
            maxPriorityFeePerGas=hex_quantity(self.max_priority_fee_per_gas),
        )
        if self.paymaster is not None:
            out.update(
                paymaster=self.paymaster,
                paymasterVerificationGasLimit=hex_quantity(self.paymaster_verification_gas_limit),
                paymasterPostOpGasLimit=hex_quantity(self.paymaster_post_op_gas_limit),
                paymasterData="0x" + self.paymaster_data.hex(),
            )
        out["signature"] = "0x" + self.signature.hex()
        if self.eip7702_auth is not None:
            out["eip7702Auth"] = auth_to_rpc(self.eip7702_auth)
        return out

    @classmethod
    def from_rpc(cls, data: dict[str, Any]) -> PackedUserOperation:
        """Parse the bundler JSON form (inverse of :meth:`to_rpc`).

        Accepts hex or int quantities; missing/null optional fields mean absent; a ``factory``
        of ``"0x7702"`` (short marker) is read as :data:`EIP7702_FACTORY`; the packed
        ``initCode``/``paymasterAndData`` forms are accepted when the unpacked ones are absent.
        Unknown keys are ignored.
        """
        if not isinstance(data, dict):
            raise InvalidInputError(
                "user_operation", data, "a JSON object", "pass the decoded JSON dict"
            )

        def qty(key: str, bits: int, default: int | None = None) -> int:
            value = data.get(key)
            if value is None:
                if default is not None:
                    return default
                raise InvalidInputError(key, None, f"the {key} field", f"add {key!r}")
            return parse_quantity(value, key, bits)

        def blob(key: str) -> bytes:
            value = data.get(key)
            return b"" if value is None else checked_bytes(value, key)

        factory = data.get("factory")
        factory_data = blob("factoryData")
        if factory is None and data.get("initCode") not in (None, "0x", ""):
            factory, factory_data = _split_init_code(checked_bytes(data["initCode"], "initCode"))
        elif isinstance(factory, str) and factory.lower() in ("0x7702", "0x" + "7702".ljust(40, "0")):
            factory = EIP7702_FACTORY
        if factory is not None and checked_address(factory, "factory") == "0x" + "0" * 40:
            factory = None  # some bundlers echo a zero factory for "none"

        paymaster = data.get("paymaster")
        pm_fields = (
            qty("paymasterVerificationGasLimit", _U128, 0),
            qty("paymasterPostOpGasLimit", _U128, 0),
            blob("paymasterData"),
        )
        if paymaster is None and data.get("paymasterAndData") not in (None, "0x", ""):
            paymaster, *rest = _split_paymaster_and_data(
                checked_bytes(data["paymasterAndData"], "paymasterAndData")
            )
            pm_fields = tuple(rest)  # type: ignore[assignment]

        auth = data.get("eip7702Auth")
        if data.get("sender") is None:
            raise InvalidInputError("sender", None, "the sender address", "add 'sender'")
        return cls(
            sender=data["sender"],
            nonce=qty("nonce", 256),
            factory=factory,
            factory_data=factory_data,
            call_data=blob("callData"),
            call_gas_limit=qty("callGasLimit", _U128, 0),
            verification_gas_limit=qty("verificationGasLimit", _U128, 0),
            pre_verification_gas=qty("preVerificationGas", 256, 0),
            max_fee_per_gas=qty("maxFeePerGas", _U128, 0),
            max_priority_fee_per_gas=qty("maxPriorityFeePerGas", _U128, 0),
            paymaster=paymaster,
            paymaster_verification_gas_limit=pm_fields[0],
            paymaster_post_op_gas_limit=pm_fields[1],
            paymaster_data=pm_fields[2],
            signature=blob("signature"),
            eip7702_auth=None if auth is None else auth_from_rpc(auth),
        )

    def _with_signature(self, signature: bytes) -> PackedUserOperation:
        """Copy with a new signature, skipping re-validation (hot path of sign_user_op)."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        object.__setattr__(new, "signature", signature)
        return new


def _split_init_code(init_code: bytes) -> tuple[str | None, bytes]:
    """initCode -> (factory, factory_data), mirroring the EntryPoint's reading of it."""
    if not init_code:
        return None, b""
    if len(init_code) < 20:
        if len(init_code) >= 2 and init_code.ljust(20, b"\0") == INITCODE_EIP7702_MARKER:
            return EIP7702_FACTORY, b""  # short 7702 marker: hashed exactly like the full one
        raise InvalidInputError(
            "initCode", init_code, "empty, or a 20-byte factory address followed by its data",
            "the EntryPoint rejects this with AA99 initCode too small",
        )
    return to_checksum_address(init_code[:20]), init_code[20:]


def _split_paymaster_and_data(pmd: bytes) -> tuple[str | None, int, int, bytes]:
    """paymasterAndData -> (paymaster, pm verification gas, pm postOp gas, paymaster data)."""
    if not pmd:
        return None, 0, 0, b""
    if len(pmd) < 52:
        raise InvalidInputError(
            "paymasterAndData", pmd, "empty, or at least 52 bytes (address + two uint128)",
            "the EntryPoint rejects this with AA93 invalid paymasterAndData",
        )
    return (
        to_checksum_address(pmd[:20]),
        int.from_bytes(pmd[20:36], "big"),
        int.from_bytes(pmd[36:52], "big"),
        pmd[52:],
    )


# --------------------------------------------------------------------------------------------
# hashing
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _domain_separator(entry_point: str, chain_id: int) -> bytes:
    """Cached EIP-712 domain separator for (checksummed entry point, chain id)."""
    return keccak(
        _EIP712_DOMAIN_TYPEHASH
        + keccak(text=DOMAIN_NAME)
        + keccak(text=DOMAIN_VERSION)
        + chain_id.to_bytes(32, "big")
        + bytes(12) + _addr_bytes(entry_point)
    )


def _checked_chain_id(chain_id: Any) -> int:
    """A chain id as used in the EIP-712 domain: a positive uint256."""
    chain_id = checked_uint(chain_id, "chain_id", 256)
    if chain_id == 0:
        raise InvalidInputError(
            "chain_id", 0, "the chain's id (block.chainid, never 0)",
            "pass the chain id the RPC reports (eth_chainId)",
        )
    return chain_id


def domain_separator(entry_point: Any, chain_id: int) -> bytes:
    """EntryPoint v0.8 ``getDomainSeparatorV4()``: EIP-712 domain ("ERC4337", "1")."""
    return _domain_separator(
        checked_address(entry_point, "entry_point"), _checked_chain_id(chain_id)
    )


def _resolve_delegate(op: PackedUserOperation, delegate: Any) -> bytes | None:
    """The delegate bound by a 7702 initCode (given, or from the attached authorization)."""
    if not op.is_eip7702:
        return None
    auth_delegate = None
    if op.eip7702_auth is not None:
        auth_delegate = to_checksum_address(op.eip7702_auth.address)
    if delegate is None:
        if auth_delegate is None:
            raise InvalidInputError(
                "delegate", None,
                "the sender's current EIP-7702 delegate when initCode carries the 0x7702 marker",
                "pass delegate=parse_delegation(w3.eth.get_code(sender)), or attach eip7702_auth",
            )
        return _addr_bytes(auth_delegate)
    delegate = checked_address(delegate, "delegate", allow_zero=False)
    if auth_delegate is not None and auth_delegate != delegate:
        raise InvalidInputError(
            "delegate", delegate, f"the delegate named by eip7702_auth ({auth_delegate})",
            "omit delegate (it defaults to the authorization's) or fix the authorization",
        )
    return _addr_bytes(delegate)


def user_op_struct_hash(op: PackedUserOperation, delegate: Any = None) -> bytes:
    """EIP-712 ``hashStruct`` of the op (``UserOperationLib.hash``), 7702 rule applied."""
    if not isinstance(op, PackedUserOperation):
        raise InvalidInputError("op", op, "a PackedUserOperation", "build one first")
    delegate_bytes = _resolve_delegate(op, delegate)
    if delegate_bytes is not None:
        init_code_hash = keccak(delegate_bytes + op.factory_data)  # == keccak(delegate) if empty
    else:
        init_code_hash = keccak(op.init_code)
    return keccak(
        PACKED_USEROP_TYPEHASH
        + bytes(12) + _addr_bytes(op.sender)
        + op.nonce.to_bytes(32, "big")
        + init_code_hash
        + keccak(op.call_data)
        + op.account_gas_limits
        + op.pre_verification_gas.to_bytes(32, "big")
        + op.gas_fees
        + keccak(op.paymaster_and_data)
    )


def user_op_hash(
    op: PackedUserOperation, entry_point: Any, chain_id: int, delegate: Any = None
) -> bytes:
    """EntryPoint v0.8 ``getUserOpHash(op)`` computed off chain (32 bytes).

    ``delegate`` is needed only when ``op.factory`` is :data:`EIP7702_FACTORY`: it is the
    address the sender's code delegates to when the op is validated (the EntryPoint reads it
    from chain). It defaults to ``op.eip7702_auth``'s delegate when an authorization is
    attached; without either, :class:`InvalidInputError` is raised. An attached authorization
    must be for this chain (or chain id 0).
    """
    chain_id = _checked_chain_id(chain_id)
    entry_point = checked_address(entry_point, "entry_point")
    auth = getattr(op, "eip7702_auth", None)
    if auth is not None and auth.chain_id not in (0, chain_id):
        raise InvalidInputError(
            "eip7702_auth.chainId", auth.chain_id, f"chain id {chain_id} (or 0)",
            "re-sign the authorization for this chain",
        )
    return keccak(
        b"\x19\x01" + _domain_separator(entry_point, chain_id) + user_op_struct_hash(op, delegate)
    )


# --------------------------------------------------------------------------------------------
# signing
# --------------------------------------------------------------------------------------------

_KEY_CACHE: weakref.WeakKeyDictionary[Any, coincurve.PrivateKey] = weakref.WeakKeyDictionary()


def _signing_key(key: Any) -> coincurve.PrivateKey:
    """A coincurve key for ``key``; cached per LocalAccount object (deriving one costs ~40 µs)."""
    if isinstance(key, coincurve.PrivateKey):
        return key
    try:
        cached = _KEY_CACHE.get(key)
    except TypeError:  # unhashable or not weak-referenceable (bytes, str, int)
        cached = None
    if cached is not None:
        return cached
    signing_key = coincurve.PrivateKey(_secret_bytes(key, "private_key_or_account"))
    if hasattr(key, "address") and hasattr(key, "key"):  # a LocalAccount: remember it weakly
        try:
            _KEY_CACHE[key] = signing_key
        except TypeError:
            pass
    return signing_key


def _sign_hash(signing_key: coincurve.PrivateKey, digest: bytes) -> bytes:
    """65-byte ``r ‖ s ‖ v`` (v = 27/28) over a raw 32-byte digest, low-s guaranteed."""
    raw = signing_key.sign_recoverable(digest, hasher=None)
    s = int.from_bytes(raw[32:64], "big")
    recid = raw[64]
    if s > _HALF_N:  # libsecp256k1 already normalizes; keep the guarantee explicit
        s = SECP256K1_N - s
        recid ^= 1
        raw = raw[:32] + s.to_bytes(32, "big") + bytes([recid])
    if recid > 1:  # r overflowed the group order: not expressible as v = 27/28 (p ~ 2**-127)
        raise SmartKeysError("signature recovery id > 1 cannot be encoded for ecrecover; retry")
    return raw[:64] + bytes((27 + recid,))


@secret_frames_dropped
def sign_user_op(
    op: PackedUserOperation,
    private_key_or_account: Any,
    entry_point: Any,
    chain_id: int,
    delegate: Any = None,
) -> PackedUserOperation:
    """Return a copy of ``op`` signed over its raw ``userOpHash`` (no EIP-191 prefix).

    The signature is 65 bytes ``r ‖ s ‖ v`` with v = 27/28 and low s, as OpenZeppelin's
    ``ECDSA.tryRecover(userOpHash, signature)`` expects. Gas values above
    :data:`MAX_GAS_VALUE` are refused first (the EntryPoint would reject them with AA94).
    ``private_key_or_account``: a ``LocalAccount``, a ``coincurve.PrivateKey`` (fastest), an
    eth-keys ``PrivateKey``, 32 bytes or hex, or any other eth-account ``BaseAccount`` (a hardware-wallet,
    KMS or remote-signer adapter), which signs the op as EIP-712 typed data
    (:func:`smartkeys.signers.sign_digest_typed`; the signature is checked to recover to its address).
    ``delegate``: see :func:`user_op_hash`.
    """
    if not isinstance(op, PackedUserOperation):
        raise InvalidInputError("op", op, "a PackedUserOperation", "build one first")
    for name in _GAS_FIELDS:
        value = getattr(op, name)
        if value > MAX_GAS_VALUE:
            raise InvalidInputError(
                name, value, "at most 2**120 - 1 (EntryPoint v0.8 limit, AA94)",
                "lower it; real gas values are far below this",
            )
    if isinstance(private_key_or_account, BaseAccount) and not isinstance(private_key_or_account, LocalAccount):
        from smartkeys.signers import sign_digest_typed, user_op_typed_data

        typed = user_op_typed_data(op, entry_point, chain_id, delegate)
        return op._with_signature(sign_digest_typed(private_key_or_account, typed, "user operation"))
    digest = user_op_hash(op, entry_point, chain_id, delegate)
    return op._with_signature(_sign_hash(_signing_key(private_key_or_account), digest))


def recover_user_op_signer(
    op: PackedUserOperation, entry_point: Any, chain_id: int, delegate: Any = None
) -> str:
    """The address that produced ``op.signature`` over its userOpHash (checks like OZ ECDSA).

    Refuses what ``ECDSA.tryRecover`` refuses: a signature not 65 bytes, v not 27/28, high s,
    and recovery failure. Useful to debug AA24 before sending.
    """
    sig = op.signature
    if len(sig) != 65:
        raise InvalidInputError("signature", sig, "65 bytes r ‖ s ‖ v", "sign with sign_user_op")
    r = int.from_bytes(sig[:32], "big")
    s = int.from_bytes(sig[32:64], "big")
    v = sig[64]
    if v not in (27, 28):
        raise InvalidInputError("signature", sig, "v = 27 or 28", "sign with sign_user_op")
    if s > _HALF_N or s == 0 or not 0 < r < SECP256K1_N:
        raise InvalidInputError(
            "signature", sig, "0 < r < n and 0 < s <= n/2 (low s)", "sign with sign_user_op"
        )
    digest = user_op_hash(op, entry_point, chain_id, delegate)
    try:
        public = coincurve.PublicKey.from_signature_and_message(
            sig[:64] + bytes((v - 27,)), digest, hasher=None
        )
    except Exception:
        raise InvalidInputError(
            "signature", sig, "a recoverable signature", "sign with sign_user_op"
        ) from None
    return to_checksum_address(keccak(public.format(compressed=False)[1:])[12:])
