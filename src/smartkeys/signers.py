"""Who signs: a local key, any eth-account ``BaseAccount``, or a remote signer over JSON-RPC.

Every place that signs for an owner or an agent takes an ``eth_account.signers.base.BaseAccount`` (the shape
hardware-wallet, KMS and remote-signer adapters take) or a :class:`~smartkeys.keystore.SessionKey`. A
``LocalAccount`` (what the encrypted keystore loads, still the default) keeps the fast path: user-operation
hashes are signed with libsecp256k1 through coincurve and the key never leaves the account object.

What each signing site asks of a signer that is not a ``LocalAccount``:

===============================  ==========================================================================
payload                          signer method used (in order of preference)
===============================  ==========================================================================
transaction (type 2)             ``sign_transaction(tx)``; the raw transaction's sender is checked
set-code transaction (type 4)    ``sign_transaction(tx)`` with ``authorizationList`` (EIP-7702)
EIP-7702 authorization           ``sign_authorization({"chainId", "address", "nonce"})`` if the signer has it,
                                 else ``unsafe_sign_hash(keccak(0x05 ‖ rlp([chain_id, address, nonce])))``
user operation (EntryPoint v0.8) ``sign_typed_data(full_message=...)`` if the signer has it, else
                                 ``sign_message(encode_typed_data(full_message=...))``: the ``userOpHash`` is
                                 an EIP-712 hash (domain "ERC4337", version "1"), so a hardware wallet or a
                                 remote signer shows and signs typed data, never a blind hash
===============================  ==========================================================================

Every signature is checked before use: it must recover to the signer's address (else
:class:`~smartkeys.errors.SignerResponseError`); high ``s`` is normalized to low ``s`` (OpenZeppelin's ECDSA
and EIP-7702 refuse high ``s``). A signer that cannot sign a payload raises
:class:`~smartkeys.errors.SignerUnsupportedError` naming the payload and the fix.

:class:`JsonRpcSigner` signs through the JSON-RPC API that Web3Signer and geth-style signers serve
(``eth_accounts``, ``eth_signTransaction``, ``eth_signTypedData_v4`` / ``eth_signTypedData``,
``personal_sign``) or Clef's external API (``account_list``, ``account_signTransaction``,
``account_signTypedData``, ``account_signData``). Neither API has a method that signs a raw hash, so an
EIP-7702 authorization cannot be signed remotely: delegate once with the keystore key (or a signer that has
``sign_authorization``), then use the remote signer for everything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from eth_account import Account
from eth_account.datastructures import (
    SignedMessage,
    SignedSetCodeAuthorization,
    SignedTransaction,
)
from eth_account.messages import SignableMessage, encode_typed_data
from eth_account.signers.base import BaseAccount
from eth_keys.datatypes import Signature
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes

from smartkeys.errors import (
    InvalidInputError,
    NetworkError,
    NodeUnavailableError,
    SignerResponseError,
    SignerUnsupportedError,
)

__all__ = [
    "BaseAccount",
    "JsonRpcSigner",
    "as_signer",
    "parse_signer_url",
    "sign_digest_typed",
    "user_op_typed_data",
]

_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def as_signer(value: Any, field: str = "account") -> BaseAccount:
    """``value`` as a ``BaseAccount``: a ``BaseAccount`` as is, a :class:`~smartkeys.keystore.SessionKey`'s
    account; anything else (a raw key, an address) raises :class:`~smartkeys.errors.InvalidInputError`
    naming ``field`` (a raw key's value is never shown)."""
    from smartkeys.keystore import SessionKey

    if isinstance(value, SessionKey):
        return value.account
    if isinstance(value, BaseAccount):
        return value
    raise InvalidInputError(
        field, type(value).__name__,
        "an eth_account BaseAccount (a LocalAccount from the keystore, a hardware-wallet/KMS adapter, "
        "smartkeys.signers.JsonRpcSigner) or a keystore.SessionKey",
        "load the key with smartkeys.keystore.load_keystore(), or wrap your signer in a BaseAccount subclass",
        secret=True,
    )


def _describe(signer: Any) -> str:
    return repr(signer) if isinstance(signer, JsonRpcSigner) else f"{type(signer).__name__}({signer.address})"


# --------------------------------------------------------------------------------------------
# signatures: normalize and check
# --------------------------------------------------------------------------------------------


def _vrs(signed: Any, operation: str, signer: Any) -> tuple[int, int, int]:
    """``(y_parity, r, s)`` of a signer's answer: a ``SignedMessage``-like object (``v r s``) or 65 bytes."""
    try:
        if isinstance(signed, (bytes, bytearray, str)):
            raw = bytes(HexBytes(signed))
            if len(raw) != 65:
                raise ValueError(len(raw))
            v, r, s = raw[64], int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big")
        else:
            v, r, s = int(signed.v), int(signed.r), int(signed.s)
    except (AttributeError, TypeError, ValueError):
        raise SignerResponseError(f"the answer is not a 65-byte signature: {type(signed).__name__}",
                                  operation=operation, signer=_describe(signer),
                                  fix="check that the signer returns r ‖ s ‖ v signatures") from None
    y = v - 27 if v in (27, 28) else v
    if y not in (0, 1) or not (0 < r < _N and 0 < s < _N):
        raise SignerResponseError(f"the signature is out of range (v={v})", operation=operation,
                                  signer=_describe(signer), fix="check the signer's signature encoding")
    if s > _N // 2:  # the same signature with low s: OpenZeppelin ECDSA and EIP-7702 accept only this form
        s, y = _N - s, y ^ 1
    return y, r, s


def _checked(digest: bytes, vrs: tuple[int, int, int], operation: str, signer: Any) -> tuple[int, int, int]:
    """Recover the signer of ``digest``; :class:`SignerResponseError` unless it is ``signer.address``."""
    y, r, s = vrs
    try:
        recovered = to_checksum_address(Signature(vrs=(y, r, s)).recover_public_key_from_msg_hash(digest)
                                        .to_checksum_address())
    except Exception:  # noqa: BLE001 - eth-keys raises several types for an unrecoverable signature
        recovered = None
    if recovered != to_checksum_address(signer.address):
        raise SignerResponseError(
            f"the signature recovers to {recovered}, not to the signer's address {signer.address}",
            operation=operation, signer=_describe(signer),
            fix="use the signer that holds this account's key (check the address the signer serves)")
    return y, r, s


def sign_digest_typed(signer: BaseAccount, typed_data: Mapping[str, Any], operation: str) -> bytes:
    """Sign EIP-712 ``typed_data`` (a full message: types, primaryType, domain, message) with ``signer``.

    Returns 65 bytes ``r ‖ s ‖ v`` (v = 27/28, low s) over ``hashTypedData``; checked to recover to
    ``signer.address``. Uses ``signer.sign_typed_data(full_message=...)`` when the signer has it (what a
    remote signer or a hardware wallet needs to show the fields), else ``signer.sign_message`` of the
    encoded message. Raises :class:`SignerResponseError` / :class:`SignerUnsupportedError`.
    """
    message = encode_typed_data(full_message=dict(typed_data))
    digest = keccak(b"\x19" + bytes(message.version) + message.header + message.body)
    sign_typed = getattr(signer, "sign_typed_data", None)
    signed = sign_typed(full_message=dict(typed_data)) if callable(sign_typed) else signer.sign_message(message)
    y, r, s = _checked(digest, _vrs(signed, operation, signer), operation, signer)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((27 + y,))


def user_op_typed_data(op: Any, entry_point: str, chain_id: int, delegate: Any = None) -> dict[str, Any]:
    """The EIP-712 message whose hash is the EntryPoint v0.8 ``userOpHash`` of ``op`` (ERC-4337,
    ``UserOperationLib.hash`` with domain ``("ERC4337", "1", chainId, entryPoint)``).

    For an EIP-7702 op (initCode marker ``0x7702``) the ``initCode`` field carries ``delegate ‖ factoryData``,
    which is what the EntryPoint hashes (``Eip7702Support``). uint256 values are decimal strings (JSON
    numbers lose precision past 2**53 in JavaScript signers).

    >>> from smartkeys.userop import PackedUserOperation, user_op_hash
    >>> op = PackedUserOperation(sender="0x" + "11" * 20, nonce=2**70, call_data=b"\\x01")
    >>> data = user_op_typed_data(op, "0x4337084D9E255Ff0702461CF8895CE9E3b5Ff108", 31337)
    >>> m = encode_typed_data(full_message=data)
    >>> keccak(b"\\x19\\x01" + m.header + m.body) == user_op_hash(op, "0x4337084D9E255Ff0702461CF8895CE9E3b5Ff108", 31337)
    True
    """
    from smartkeys.userop import (
        DOMAIN_NAME,
        DOMAIN_VERSION,
        _resolve_delegate,
        user_op_hash,
    )

    user_op_hash(op, entry_point, chain_id, delegate)  # the same checks (chain id, 7702 delegate) as the hash
    delegate_bytes = _resolve_delegate(op, delegate)
    init_code = delegate_bytes + op.factory_data if delegate_bytes is not None else op.init_code
    return {
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                             {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
            "PackedUserOperation": [
                {"name": "sender", "type": "address"}, {"name": "nonce", "type": "uint256"},
                {"name": "initCode", "type": "bytes"}, {"name": "callData", "type": "bytes"},
                {"name": "accountGasLimits", "type": "bytes32"}, {"name": "preVerificationGas", "type": "uint256"},
                {"name": "gasFees", "type": "bytes32"}, {"name": "paymasterAndData", "type": "bytes"},
            ],
        },
        "primaryType": "PackedUserOperation",
        "domain": {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": str(int(chain_id)),
                   "verifyingContract": to_checksum_address(entry_point)},
        "message": {
            "sender": op.sender, "nonce": str(op.nonce), "initCode": "0x" + init_code.hex(),
            "callData": "0x" + op.call_data.hex(), "accountGasLimits": "0x" + op.account_gas_limits.hex(),
            "preVerificationGas": str(op.pre_verification_gas), "gasFees": "0x" + op.gas_fees.hex(),
            "paymasterAndData": "0x" + op.paymaster_and_data.hex(),
        },
    }


def check_signed_transaction(signer: BaseAccount, tx: Mapping[str, Any], signed: Any) -> None:
    """:class:`SignerResponseError` unless ``signed.raw_transaction`` is ``tx`` as asked, sent by ``signer``.

    Compared: sender, nonce, chain id, to, value, data, gas, fees and the authorization list (type 4). A
    remote signer that fills or changes a field is refused before anything is sent.
    """
    from eth_account.typed_transactions import TypedTransaction

    operation = "transaction"
    raw = bytes(signed.raw_transaction)
    try:
        sender = to_checksum_address(Account.recover_transaction(raw))
        fields = TypedTransaction.from_bytes(HexBytes(raw)).as_dict() if raw[:1] < b"\x7f" else None
    except Exception as exc:  # noqa: BLE001 - any decoding failure means the answer is unusable
        raise SignerResponseError(f"the raw transaction does not decode ({type(exc).__name__})", operation=operation,
                                  signer=_describe(signer), fix="check the signer's eth_signTransaction") from None
    problems = [] if sender == to_checksum_address(signer.address) else [f"sender {sender}"]
    if fields is None:
        problems.append("a legacy transaction (an EIP-1559 or EIP-7702 one was asked)")
    else:
        wanted = {"nonce": tx.get("nonce"), "chainId": tx.get("chainId"), "value": tx.get("value", 0),
                  "gas": tx.get("gas"), "maxFeePerGas": tx.get("maxFeePerGas"),
                  "maxPriorityFeePerGas": tx.get("maxPriorityFeePerGas")}
        for key, value in wanted.items():
            if value is not None and int(fields.get(key, -1)) != int(value):
                problems.append(f"{key} {fields.get(key)} (asked {value})")
        to = fields.get("to")
        signed_to = to_checksum_address(to) if to else None
        if signed_to != (to_checksum_address(tx["to"]) if tx.get("to") else None):
            problems.append(f"to {signed_to}")
        if bytes(HexBytes(fields.get("data", b""))) != bytes(HexBytes(tx.get("data", b""))):
            problems.append("data")
        if len(fields.get("authorizationList", ()) or ()) != len(tx.get("authorizationList", ()) or ()):
            problems.append("authorizationList")
    if problems:
        raise SignerResponseError("the signed transaction differs from the one asked: " + ", ".join(problems),
                                  operation=operation, signer=_describe(signer),
                                  fix="check what the signer changes (its rules or filler); nothing was sent")


# --------------------------------------------------------------------------------------------
# a remote signer over JSON-RPC
# --------------------------------------------------------------------------------------------

#: JSON-RPC method names per API. "eth": Web3Signer's eth1 API and geth-style signers (eth_accounts,
#: eth_signTransaction, eth_signTypedData_v4, personal_sign); "web3signer" differs in the typed-data method
#: name (eth_signTypedData); "clef": Clef's external API (account_*; go-ethereum docs, "Clef APIs").
_METHODS = {
    "eth": {"accounts": "eth_accounts", "transaction": "eth_signTransaction",
            "typed_data": "eth_signTypedData_v4", "personal": "personal_sign"},
    "web3signer": {"accounts": "eth_accounts", "transaction": "eth_signTransaction",
                   "typed_data": "eth_signTypedData", "personal": "eth_sign"},
    "clef": {"accounts": "account_list", "transaction": "account_signTransaction",
             "typed_data": "account_signTypedData", "personal": "account_signData"},
}


_OPERATIONS = {"accounts": "account list request", "transaction": "transaction", "typed_data": "EIP-712 typed data",
               "personal": "personal message"}


def parse_signer_url(url: str) -> tuple[str, str]:
    """``(api, endpoint)`` of a remote signer setting (the CLI's ``--signer-url``): ``http(s)://host:port``
    is the ``"eth"`` API; ``clef+http://...`` and ``web3signer+https://...`` name the API in the scheme, the
    way database URLs name their driver. Raises :class:`~smartkeys.errors.InvalidInputError` (field
    ``signer_url``) for anything else."""
    scheme, sep, rest = url.strip().partition("://")
    api, plus, transport = scheme.rpartition("+")
    api = api if plus else "eth"
    if not sep or transport not in ("http", "https") or api not in _METHODS or not rest:
        raise InvalidInputError("signer_url", url.split("://")[0] + "://…" if sep else "…",
                                "a signer URL: http(s)://host:port, clef+http://… or web3signer+https://…",
                                "e.g. --signer-url clef+http://127.0.0.1:8550 (Clef) or "
                                "web3signer+http://127.0.0.1:9000 (Web3Signer)")
    return api, f"{transport}://{rest}"


def _qty(value: Any) -> str:
    return hex(int(value))


class JsonRpcSigner(BaseAccount):
    """An account whose key lives in a remote signer (Web3Signer, Clef, a geth-style signer), reached over
    JSON-RPC at ``url``. A ``BaseAccount``: pass it wherever smartkeys takes an owner or a session key.

    ``address``: the account to sign with; default: the signer's only account (``eth_accounts`` /
    ``account_list``), and when given it must be one the signer serves. ``api``: ``"eth"`` (default:
    ``eth_signTransaction``, ``eth_signTypedData_v4``, ``personal_sign``), ``"web3signer"``
    (``eth_signTypedData``, ``eth_sign``) or ``"clef"`` (``account_*``). ``set_code_transactions``: True if the
    signer signs type-4 (EIP-7702) transactions through its sign-transaction method; otherwise they raise
    :class:`SignerUnsupportedError`. ``timeout``: seconds per request (a signer that asks a human may need more).

    Every answer is checked: signatures must recover to ``address`` and a signed transaction must be the one
    asked (:class:`SignerResponseError`). An unreachable signer raises
    :class:`~smartkeys.errors.NodeUnavailableError`, a JSON-RPC error :class:`SignerResponseError`.
    ``unsafe_sign_hash`` and ``sign_authorization`` raise :class:`SignerUnsupportedError`: neither API signs a
    raw hash (EIP-7702 authorizations are raw hashes).
    """

    def __init__(self, url: str, address: str | None = None, *, api: str = "eth", set_code_transactions: bool = False,
                 timeout: float = 60) -> None:
        if api not in _METHODS:
            raise InvalidInputError("api", api, "one of " + ", ".join(sorted(_METHODS)),
                                    "'eth' for Web3Signer-compatible and geth-style signers, 'clef' for Clef")
        parts = urlsplit(str(url))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInputError("url", "<the signer URL>", "an http(s) URL of the signer", "e.g. http://127.0.0.1:8550")
        self._url = str(url)
        # shown in reprs and errors: scheme, host and port only (a path or query may carry a token)
        self._endpoint = f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}"
        self._methods = _METHODS[api]
        self.api = api
        self.set_code_transactions = bool(set_code_transactions)
        self.timeout = float(timeout)
        self._ids = 0
        self._session: Any = None  # a requests.Session, made on first use (keeps the connection alive)
        served = [to_checksum_address(a if isinstance(a, str) else a.get("address"))
                  for a in self._call("accounts", [])]
        if address is None:
            if len(served) != 1:
                raise InvalidInputError("address", None, f"one of the signer's accounts {served}",
                                        "pass address=... (the signer serves several accounts, or none)")
            address = served[0]
        address = to_checksum_address(address)
        if address not in served:
            raise InvalidInputError("address", address, f"an account the signer at {self._endpoint} serves: {served}",
                                    "import the key into the signer, or pass one of its accounts")
        self._address = address

    def __repr__(self) -> str:
        return f"JsonRpcSigner(address={getattr(self, '_address', None)}, endpoint={self._endpoint}, api={self.api!r})"

    @property
    def address(self) -> Any:
        return self._address

    # -- transport ----------------------------------------------------------------------

    def _call(self, role: str, params: list[Any]) -> Any:
        """One JSON-RPC request (no retry: a signer may ask a human each time)."""
        import requests

        from smartkeys.rpc import bounded_timeout

        method = self._methods[role]
        self._ids += 1
        if self._session is None:
            self._session = requests.Session()
        payload = {"jsonrpc": "2.0", "id": self._ids, "method": method, "params": params}
        try:
            response = self._session.post(self._url, json=payload, timeout=bounded_timeout(
                self.timeout, f"waiting for the signer ({method})"))
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise NodeUnavailableError(f"the signer at {self._endpoint} did not answer {method} "
                                       f"({type(exc).__name__})", endpoint=self._endpoint, method=method,
                                       hint="start the signer or check its URL, then run again") from None
        except requests.RequestException as exc:
            raise NetworkError(f"the request to the signer at {self._endpoint} failed ({type(exc).__name__})",
                               endpoint=self._endpoint, method=method, hint="check the signer's URL") from None
        try:
            body = response.json()
        except ValueError:
            raise NetworkError(f"the signer at {self._endpoint} answered {method} with something that is not JSON "
                               f"(HTTP {response.status_code})", endpoint=self._endpoint, method=method,
                               hint="check that the URL is the signer's JSON-RPC endpoint") from None
        if not isinstance(body, dict) or ("error" not in body and "result" not in body):
            raise NetworkError(f"the signer at {self._endpoint} answered {method} without a result",
                               endpoint=self._endpoint, method=method,
                               hint="check that the URL is the signer's JSON-RPC endpoint")
        if body.get("error") is not None:
            error = body["error"] if isinstance(body["error"], dict) else {"message": str(body["error"])}
            raise SignerResponseError(f"{method} failed: JSON-RPC error {error.get('code')}: "
                                      f"{str(error.get('message', ''))[:200]}", operation=_OPERATIONS[role],
                                      signer=repr(self), fix="see the signer's log (it refused or failed)")
        return body["result"]

    # -- BaseAccount ----------------------------------------------------------------------

    def sign_transaction(self, transaction_dict: Mapping[str, Any], blobs: Any = None) -> SignedTransaction:
        """``eth_signTransaction`` (``account_signTransaction`` for Clef) of a filled EIP-1559 or, with
        ``set_code_transactions``, EIP-7702 transaction. The raw answer (a hex string, or ``{"raw": ...}``
        as geth and Clef return) is decoded and checked against what was asked (:func:`check_signed_transaction`).
        """
        from smartkeys.authorization import auth_to_rpc

        tx = dict(transaction_dict)
        authorizations = tx.get("authorizationList") or []
        if blobs is not None:
            raise SignerUnsupportedError("blob transactions are not sent by smartkeys", operation="blob transaction",
                                         signer=repr(self), fix="leave blobs out")
        if authorizations and not self.set_code_transactions:
            raise SignerUnsupportedError(
                "the signer's API has no type-4 (EIP-7702 set-code) transaction form known to work",
                operation="type-4 (EIP-7702) transaction", signer=repr(self),
                fix="send the set-code transaction from a keystore account (sponsor=...), or pass "
                    "JsonRpcSigner(..., set_code_transactions=True) if your signer signs type 4")
        wire: dict[str, Any] = {"from": self._address, "data": "0x" + bytes(HexBytes(tx.get("data", b""))).hex()}
        if tx.get("to"):
            wire["to"] = to_checksum_address(tx["to"])
        for key in ("nonce", "chainId", "gas", "value", "maxFeePerGas", "maxPriorityFeePerGas", "gasPrice"):
            if tx.get(key) is not None:
                wire[key] = _qty(tx[key])
        if authorizations:
            wire["type"] = "0x4"
            wire["authorizationList"] = [auth_to_rpc(a) for a in authorizations]
        result = self._call("transaction", [wire])
        raw_value: Any = result.get("raw") if isinstance(result, dict) else result
        try:
            raw = bytes(HexBytes(raw_value))
        except (TypeError, ValueError):
            raise SignerResponseError("the answer carries no raw transaction", operation="transaction",
                                      signer=repr(self), fix="check the signer's eth_signTransaction") from None
        y, r, s = self._tx_vrs(raw)
        signed = SignedTransaction(raw_transaction=HexBytes(raw), hash=HexBytes(keccak(raw)), r=r, s=s, v=y)
        check_signed_transaction(self, tx, signed)
        return signed

    def _tx_vrs(self, raw: bytes) -> tuple[int, int, int]:
        from eth_account.typed_transactions import TypedTransaction

        try:
            v, r, s = TypedTransaction.from_bytes(HexBytes(raw)).vrs()
        except Exception:  # noqa: BLE001 - an undecodable answer is refused below with the reason
            raise SignerResponseError("the raw transaction does not decode as a typed transaction",
                                      operation="transaction", signer=repr(self),
                                      fix="check the signer's eth_signTransaction") from None
        return int(v), int(r), int(s)

    def sign_typed_data(self, domain_data: Any = None, message_types: Any = None, message_data: Any = None,
                        full_message: Any = None) -> SignedMessage:
        """``eth_signTypedData_v4`` (``eth_signTypedData`` for Web3Signer, ``account_signTypedData`` for Clef)
        of the full EIP-712 message; the signature is checked to recover to ``address``."""
        if full_message is None:
            types = dict(message_types or {})
            primary = next(t for t in types if t != "EIP712Domain")
            full_message = {"types": types, "primaryType": primary, "domain": domain_data or {},
                            "message": message_data or {}}
        message = encode_typed_data(full_message=dict(full_message))
        digest = keccak(b"\x19" + bytes(message.version) + message.header + message.body)
        return self._signed_message(digest, self._call("typed_data", [self._address, dict(full_message)]),
                                    "EIP-712 typed data")

    def sign_message(self, signable_message: SignableMessage) -> SignedMessage:
        """EIP-191 personal messages (version ``E``) through ``personal_sign`` / ``eth_sign`` /
        ``account_signData("text/plain")``. Typed data (version 1) needs the full message: use
        :meth:`sign_typed_data`; other versions raise :class:`SignerUnsupportedError`."""
        version = bytes(signable_message.version)
        if version != b"E":
            raise SignerUnsupportedError(
                f"an EIP-191 version 0x{version.hex()} message from its hash alone",
                operation="message", signer=repr(self),
                fix="sign EIP-712 data with sign_typed_data(full_message=...) so the signer can show its fields")
        data = "0x" + bytes(signable_message.body).hex()
        digest = keccak(b"\x19" + version + signable_message.header + signable_message.body)
        params = {"personal_sign": [data, self._address], "eth_sign": [self._address, data],
                  "account_signData": ["text/plain", self._address, data]}[self._methods["personal"]]
        return self._signed_message(digest, self._call("personal", params), "personal message")

    def unsafe_sign_hash(self, message_hash: Any) -> SignedMessage:
        raise SignerUnsupportedError(
            "a remote signer's JSON-RPC API has no method that signs a raw 32-byte hash",
            operation="raw hash", signer=repr(self),
            fix="sign typed data (sign_typed_data) or a transaction instead; an EIP-7702 authorization needs the "
                "key itself: delegate once with the keystore key, then use this signer")

    def sign_authorization(self, authorization: Any) -> SignedSetCodeAuthorization:
        raise SignerUnsupportedError(
            "Clef and Web3Signer have no JSON-RPC method for EIP-7702 authorizations (a raw-hash signature)",
            operation="EIP-7702 authorization", signer=repr(self),
            fix="delegate once with the keystore key (Owner(w3, load_keystore(...)).delegate()), then use this "
                "signer for grants, revokes and operations; or use a signer adapter that has sign_authorization")

    def _signed_message(self, digest: bytes, answer: Any, operation: str) -> SignedMessage:
        y, r, s = _checked(digest, _vrs(answer, operation, self), operation, self)
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((27 + y,))
        return SignedMessage(message_hash=HexBytes(digest), r=r, s=s, v=27 + y, signature=HexBytes(signature))

