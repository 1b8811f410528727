"""EIP-7702 authorizations, on top of eth-account's ``SignedSetCodeAuthorization``.

An authorization is the tuple ``(chain_id, address, nonce)`` signed by an EOA (the *authority*):
"run the code at ``address`` in my account". Its hash is
``keccak(0x05 ‖ rlp([chain_id, address, nonce]))``. A node applies it only when (EIP-7702):
the chain id is 0 or the current chain, ``nonce < 2**64 - 1``, ``s <= secp256k1n / 2``, the
authority's code is empty or already a delegation, and the authority's nonce equals ``nonce``.
Otherwise the tuple is silently *skipped* and the transaction still runs.

What this module adds to eth-account:

* :func:`sign_authorization` refuses ``chain_id == 0`` (valid on every chain, hence replayable
  across chains) unless ``allow_any_chain=True`` is passed by name;
* :func:`authorization_nonce` applies the self-sponsored rule (the sender's own nonce is bumped
  before authorizations are processed, so the authorization must carry ``nonce + 1``);
* :func:`recover_authority` reuses eth-account's recovered ``.authority`` and adds the EIP-7702
  validity checks a node applies (so a tuple a node would skip is reported, not trusted);
* :func:`auth_to_rpc` / :func:`auth_from_rpc` convert to and from the bundler's ``eip7702Auth``
  JSON (``{chainId, address, nonce, yParity, r, s}``).

All functions are pure: none touches the network.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eth_account import Account
from eth_account.datastructures import SignedSetCodeAuthorization
from eth_account.signers.base import BaseAccount
from eth_account.signers.local import LocalAccount
from eth_account.typed_transactions.set_code_transaction import Authorization
from eth_keys.datatypes import Signature
from eth_typing import Hash32
from eth_utils import to_checksum_address
from hexbytes import HexBytes

from smartkeys._secrets import secret_frames_dropped
from smartkeys.encoding import (
    ZERO_ADDRESS,
    checked_address,
    checked_bytes,
    checked_uint,
    hex_quantity,
    parse_quantity,
)
from smartkeys.errors import InvalidInputError, SignerResponseError

__all__ = [
    "SECP256K1_N",
    "SignedSetCodeAuthorization",
    "as_signed_authorization",
    "auth_from_rpc",
    "auth_to_rpc",
    "authorization_hash",
    "authorization_nonce",
    "recover_authority",
    "sign_authorization",
    "verify_authorization",
]

#: Order of the secp256k1 group.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_N = SECP256K1_N // 2
_MAX_AUTH_NONCE = 2**64 - 2  # EIP-7702: nonce < 2**64 - 1


# --------------------------------------------------------------------------------------------
# private keys (shared with smartkeys.userop; never echoed anywhere)
# --------------------------------------------------------------------------------------------


def _secret_bytes(key: Any, field: str = "private_key") -> bytes:
    """32 secret bytes from a key-like object; errors never contain the key.

    Accepts 32 bytes, a 64-hex-digit string (with or without 0x), a positive int, an
    eth-account ``LocalAccount``, an eth-keys ``PrivateKey`` or a ``coincurve.PrivateKey``.
    """
    raw: bytes | None = None
    if isinstance(key, (bytes, bytearray, memoryview)):
        raw = bytes(key)
    elif isinstance(key, str):
        text = key[2:] if key[:2] in ("0x", "0X") else key
        if len(text) == 64:
            try:
                raw = bytes.fromhex(text)
            except ValueError:
                raw = None
    elif isinstance(key, int) and not isinstance(key, bool):
        if 0 < key < 2**256:
            raw = key.to_bytes(32, "big")
    elif hasattr(key, "secret") and isinstance(key.secret, bytes):  # coincurve
        raw = key.secret
    elif hasattr(key, "to_bytes") and callable(key.to_bytes) and not isinstance(key, int):
        try:
            raw = bytes(key.to_bytes())  # eth_keys.datatypes.PrivateKey
        except TypeError:
            raw = None
    elif hasattr(key, "key") and isinstance(getattr(key, "key", None), (bytes, bytearray)):
        raw = bytes(key.key)  # eth_account LocalAccount
    if raw is None or len(raw) != 32 or not 0 < int.from_bytes(raw, "big") < SECP256K1_N:
        raise InvalidInputError(
            field, key,
            "a secp256k1 private key (32 bytes, 64 hex digits, a LocalAccount or a PrivateKey)",
            "load the key from its keystore with smartkeys' keystore helpers",
            secret=True,
        )
    return raw


# --------------------------------------------------------------------------------------------
# signing
# --------------------------------------------------------------------------------------------


def authorization_nonce(current_nonce: int, self_sponsored: bool) -> int:
    """The nonce an authorization must carry, given the authority's current account nonce.

    When the authority itself sends the set-code transaction, its nonce is incremented for the
    transaction *before* the authorization list is processed, so the authorization needs
    ``current_nonce + 1``; when someone else sends it (sponsored), ``current_nonce``.

    >>> authorization_nonce(7, self_sponsored=True), authorization_nonce(7, self_sponsored=False)
    (8, 7)
    """
    current_nonce = checked_uint(current_nonce, "current_nonce", 64)
    if not isinstance(self_sponsored, bool):
        raise InvalidInputError(
            "self_sponsored", self_sponsored, "True or False",
            "True when the authority sends the set-code transaction itself",
        )
    nonce = current_nonce + 1 if self_sponsored else current_nonce
    if nonce > _MAX_AUTH_NONCE:
        raise InvalidInputError(
            "current_nonce", current_nonce, "an account nonce below 2**64 - 2",
            "this account cannot sign a usable authorization any more",
        )
    return nonce


def _checked_chain_id(chain_id: Any, allow_any_chain: bool) -> int:
    """Chain id check shared by signing and verification (0 only when explicitly allowed)."""
    chain_id = checked_uint(chain_id, "chain_id", 256)
    if chain_id == 0 and not allow_any_chain:
        raise InvalidInputError(
            "chain_id", 0, "the id of the chain the delegation is for (non-zero)",
            "pass the real chain id; chain id 0 makes the authorization valid on every chain, "
            "if you really want that pass allow_any_chain=True",
        )
    return chain_id


def authorization_hash(chain_id: int, delegate: Any, nonce: int) -> bytes:
    """``keccak(0x05 ‖ rlp([chain_id, delegate, nonce]))``, the digest an authority signs.

    >>> authorization_hash(1, "0x" + "00" * 20, 0).hex()[:16]
    '20aed0d1fcfcae79'
    """
    chain_id = checked_uint(chain_id, "chain_id", 256)
    delegate = checked_address(delegate, "delegate")
    nonce = checked_uint(nonce, "nonce", 64)
    return bytes(Authorization(chain_id, bytes.fromhex(delegate[2:]), nonce).hash())


@secret_frames_dropped
def sign_authorization(
    account: Any,
    delegate: Any,
    chain_id: int,
    nonce: int,
    *,
    allow_any_chain: bool = False,
) -> SignedSetCodeAuthorization:
    """Sign an EIP-7702 authorization delegating ``account``'s code to ``delegate``.

    ``account`` is a ``LocalAccount``, a private key, or any other eth-account ``BaseAccount`` (see
    :func:`_sign_with_signer`: its ``sign_authorization`` or ``unsafe_sign_hash``;
    a remote signer over JSON-RPC raises :class:`~smartkeys.errors.SignerUnsupportedError`). ``nonce`` is the authority's account
    nonce as the node will see it when processing the tuple: use :func:`authorization_nonce`.
    ``delegate`` = the zero address clears the delegation. ``chain_id == 0`` (valid on every
    chain) is refused unless ``allow_any_chain=True``. The signature is low-s.

    Returns eth-account's ``SignedSetCodeAuthorization`` (``.authority`` is recovered, never
    stored), usable directly in a type-4 transaction's ``authorizationList``.
    """
    chain_id = _checked_chain_id(chain_id, allow_any_chain)
    delegate = checked_address(delegate, "delegate")
    nonce = checked_uint(nonce, "nonce", 64)
    if nonce > _MAX_AUTH_NONCE:
        raise InvalidInputError(
            "nonce", nonce, "a nonce below 2**64 - 1 (EIP-7702)", "use authorization_nonce()"
        )
    if isinstance(account, BaseAccount) and not isinstance(account, LocalAccount):
        return _sign_with_signer(account, chain_id, delegate, nonce)
    secret = _secret_bytes(account, "account")
    signed = Account.sign_authorization(
        {"chainId": chain_id, "address": delegate, "nonce": nonce}, secret
    )
    if signed.s > _HALF_N or signed.y_parity not in (0, 1):  # eth-keys normalizes; be certain
        raise InvalidInputError(
            "account", account, "a signer producing low-s signatures",
            "upgrade eth-keys/coincurve", secret=True,
        )
    return signed


# --------------------------------------------------------------------------------------------
# recovery and checks
# --------------------------------------------------------------------------------------------


def as_signed_authorization(auth: Any) -> SignedSetCodeAuthorization:
    """``auth`` as a ``SignedSetCodeAuthorization``: passes one through, parses RPC JSON."""
    if isinstance(auth, SignedSetCodeAuthorization):
        return auth
    if isinstance(auth, Mapping):
        return auth_from_rpc(auth)
    raise InvalidInputError(
        "eip7702_auth", auth,
        "a SignedSetCodeAuthorization (from sign_authorization) or eip7702Auth JSON",
        "sign it with smartkeys.authorization.sign_authorization",
    )


def recover_authority(auth: Any) -> str:
    """The checksummed address that signed ``auth`` (eth-account's recovered ``.authority``).

    Refuses tuples a node would skip regardless of state: ``y_parity`` not 0/1, ``r``/``s`` out
    of range, high ``s`` (> secp256k1n/2), ``nonce >= 2**64 - 1``; and recovery to the zero
    address. Accepts a ``SignedSetCodeAuthorization`` or ``eip7702Auth`` JSON.
    """
    signed = as_signed_authorization(auth)
    if signed.y_parity not in (0, 1):
        raise InvalidInputError("eip7702_auth.yParity", signed.y_parity, "0 or 1", "re-sign it")
    if not 0 < signed.r < SECP256K1_N:
        raise InvalidInputError("eip7702_auth.r", signed.r, "0 < r < secp256k1n", "re-sign it")
    if not 0 < signed.s <= _HALF_N:
        raise InvalidInputError(
            "eip7702_auth.s", signed.s, "0 < s <= secp256k1n/2 (EIP-7702 rejects high s)",
            "re-sign it with sign_authorization (always low-s)",
        )
    if signed.nonce > _MAX_AUTH_NONCE:
        raise InvalidInputError(
            "eip7702_auth.nonce", signed.nonce, "a nonce below 2**64 - 1", "re-sign it"
        )
    authority = to_checksum_address(signed.authority)
    if authority == ZERO_ADDRESS:
        raise InvalidInputError(
            "eip7702_auth", auth, "a signature recovering to a real address", "re-sign it"
        )
    return authority


def verify_authorization(
    auth: Any,
    *,
    authority: Any = None,
    chain_id: int | None = None,
    nonce: int | None = None,
    delegate: Any = None,
    allow_any_chain: bool = False,
) -> str:
    """Check ``auth`` against what the caller expects; return the recovered authority.

    Each given expectation is checked and a mismatch raises :class:`InvalidInputError` naming
    the field: ``authority`` (the signer), ``chain_id`` (the tuple's chain id must equal it;
    a tuple with chain id 0 passes only with ``allow_any_chain=True``), ``nonce`` (the
    authority's nonce when the tuple is processed; see :func:`authorization_nonce` -- a wrong
    nonce means the node skips the authorization) and ``delegate``.
    """
    signed = as_signed_authorization(auth)
    recovered = recover_authority(signed)
    if authority is not None:
        expected = checked_address(authority, "authority")
        if recovered != expected:
            raise InvalidInputError(
                "eip7702_auth", f"an authorization signed by {recovered}",
                f"an authorization signed by {expected}",
                "sign it with the authority's own key",
            )
    if chain_id is not None:
        chain_id = checked_uint(chain_id, "chain_id", 256)
        if signed.chain_id == 0:
            if not allow_any_chain:
                raise InvalidInputError(
                    "eip7702_auth.chainId", 0, f"chain id {chain_id}",
                    "chain id 0 authorizations replay on every chain; re-sign for this chain "
                    "or pass allow_any_chain=True",
                )
        elif signed.chain_id != chain_id:
            raise InvalidInputError(
                "eip7702_auth.chainId", signed.chain_id, f"chain id {chain_id}",
                "re-sign the authorization for this chain",
            )
    if nonce is not None and signed.nonce != checked_uint(nonce, "nonce", 64):
        raise InvalidInputError(
            "eip7702_auth.nonce", signed.nonce, f"nonce {nonce}",
            "re-sign with authorization_nonce(current_nonce, self_sponsored); a node skips "
            "tuples whose nonce does not match",
        )
    if delegate is not None:
        expected_delegate = checked_address(delegate, "delegate")
        actual = to_checksum_address(signed.address)
        if actual != expected_delegate:
            raise InvalidInputError(
                "eip7702_auth.address", actual, f"delegate {expected_delegate}",
                "re-sign the authorization for the right delegate",
            )
    return recovered


# --------------------------------------------------------------------------------------------
# bundler JSON (eip7702Auth)
# --------------------------------------------------------------------------------------------


def auth_to_rpc(auth: Any) -> dict[str, str]:
    """The bundler's ``eip7702Auth`` object for ``auth``.

    Quantities are 0x-hex without leading zeros; ``r`` and ``s`` are 32-byte 0x-hex (accepted
    both where bundlers expect 32-byte data and where they expect a quantity).
    """
    signed = as_signed_authorization(auth)
    return {
        "chainId": hex_quantity(signed.chain_id),
        "address": to_checksum_address(signed.address),
        "nonce": hex_quantity(signed.nonce),
        "yParity": hex_quantity(signed.y_parity),
        "r": "0x" + signed.r.to_bytes(32, "big").hex(),
        "s": "0x" + signed.s.to_bytes(32, "big").hex(),
    }


def auth_from_rpc(data: Mapping[str, Any]) -> SignedSetCodeAuthorization:
    """Parse ``eip7702Auth`` JSON into a ``SignedSetCodeAuthorization``.

    Accepts ``address`` or ``contractAddress``, ``yParity`` or ``v`` (0/1/27/28), quantities as
    hex strings or ints, ``r``/``s`` as hex quantities or 32-byte hex. The result's
    ``.authority`` is recovered from the signature, so a forged ``authority`` field in the JSON
    (if any) is ignored.
    """
    if not isinstance(data, Mapping):
        raise InvalidInputError(
            "eip7702Auth", data, "an object {chainId, address, nonce, yParity, r, s}",
            "pass the JSON object",
        )
    address_value = data.get("address", data.get("contractAddress"))
    if address_value is None:
        raise InvalidInputError(
            "eip7702Auth.address", None, "the delegate address", "add the 'address' field"
        )
    delegate = checked_address(address_value, "eip7702Auth.address")
    chain_id = parse_quantity(_required(data, "chainId"), "eip7702Auth.chainId", 256)
    nonce = parse_quantity(_required(data, "nonce"), "eip7702Auth.nonce", 64)
    if "yParity" in data and data["yParity"] is not None:
        y_parity = parse_quantity(data["yParity"], "eip7702Auth.yParity", 8)
    else:
        v = parse_quantity(_required(data, "yParity"), "eip7702Auth.v", 256)
        y_parity = v - 27 if v in (27, 28) else v
    if y_parity not in (0, 1):
        raise InvalidInputError("eip7702Auth.yParity", y_parity, "0 or 1", "re-sign it")
    r = _parse_word(_required(data, "r"), "eip7702Auth.r")
    s = _parse_word(_required(data, "s"), "eip7702Auth.s")
    if not (0 < r < SECP256K1_N and 0 < s < SECP256K1_N):
        raise InvalidInputError(
            "eip7702Auth.r/s", (r, s), "0 < r, s < secp256k1n", "re-sign the authorization"
        )
    delegate_bytes = bytes.fromhex(delegate[2:])
    return SignedSetCodeAuthorization(
        chain_id=chain_id,
        address=delegate_bytes,
        nonce=nonce,
        y_parity=y_parity,
        r=r,
        s=s,
        signature=Signature(vrs=(y_parity, r, s)),
        authorization_hash=Authorization(chain_id, delegate_bytes, nonce).hash(),
    )


def _required(data: Mapping[str, Any], key: str) -> Any:
    """``data[key]`` or :class:`InvalidInputError` naming the missing ``eip7702Auth`` field."""
    if key == "yParity" and data.get("v") is not None:
        return data["v"]
    value = data.get(key)
    if value is None:
        raise InvalidInputError(f"eip7702Auth.{key}", None, f"the {key} field", f"add '{key}'")
    return value


def _parse_word(value: Any, field: str) -> int:
    """A 256-bit value given as an int, a hex quantity or 32-byte hex data."""
    if isinstance(value, str) and len(value) == 66:
        return int.from_bytes(checked_bytes(value, field, length=32), "big")
    return parse_quantity(value, field, 256)


def _sign_with_signer(signer: BaseAccount, chain_id: int, delegate: str, nonce: int) -> SignedSetCodeAuthorization:
    """An EIP-7702 authorization ``(chain_id, delegate, nonce)`` signed by a ``BaseAccount`` that is not a
    ``LocalAccount`` (inputs already checked by :func:`sign_authorization`, its only caller: every EIP-7702
    signature is made in this module).

    Uses ``signer.sign_authorization(dict)`` if the signer has it (as ``LocalAccount`` does), else
    ``signer.unsafe_sign_hash`` of the authorization hash (the SDK built that hash for this purpose; an
    agent never supplies it). The result is low-s and checked to recover to ``signer.address``.
    """
    from smartkeys import signers as _signers  # its answer checks (recovery, low s); imported when needed

    operation = "EIP-7702 authorization"
    delegate_bytes = bytes.fromhex(delegate[2:])
    digest = bytes(Authorization(chain_id, delegate_bytes, nonce).hash())
    method = getattr(signer, "sign_authorization", None)
    if callable(method):
        signed = method({"chainId": chain_id, "address": delegate, "nonce": nonce})
        fields = (getattr(signed, "chain_id", None), bytes(getattr(signed, "address", b"")),
                  getattr(signed, "nonce", None))
        if fields != (chain_id, delegate_bytes, nonce):
            raise SignerResponseError(f"the signer returned an authorization for {fields}, not for "
                                      f"{(chain_id, delegate, nonce)}", operation=operation,
                                      signer=_signers._describe(signer), fix="check the signer's sign_authorization")
        answer: Any
        try:
            answer = int(signed.r).to_bytes(32, "big") + int(signed.s).to_bytes(32, "big") + bytes((int(signed.y_parity),))
        except (AttributeError, TypeError, ValueError, OverflowError):
            answer = None  # refused by _vrs with the reason
    else:
        answer = signer.unsafe_sign_hash(Hash32(digest))
    y, r, s = _signers._checked(digest, _signers._vrs(answer, operation, signer), operation, signer)
    return SignedSetCodeAuthorization(chain_id=chain_id, address=delegate_bytes, nonce=nonce, y_parity=y, r=r, s=s,
                                      signature=Signature(vrs=(y, r, s)), authorization_hash=HexBytes(digest))
