"""Exceptions raised by smartkeys, and the decoder that turns revert data into them.

Every exception smartkeys raises derives from :class:`SmartKeysError`::

    SmartKeysError
    ├── InvalidInputError (+ValueError)   bad argument: .field .value .expected .hint
    │   ├── InsufficientFundsError        a sender without the ETH a transaction needs: .address .balance .required
    │   └── safe_files.FileInputError     a file refused (special, too large, too deep, ...): .path .reason
    ├── ChainMismatchError                RPC chain id != configured: .expected .actual
    ├── NotDelegatedError                 the account does not run smartkeys: .account .delegation .runs
    ├── NoSessionAllowsError              none of a key's live sessions allows the action: .candidates
    ├── UnknownImplementationError (+ValueError)  delegation target is no known smartkeys deployment
    ├── SignerError                       a signer (BaseAccount, remote signer) could not sign: .operation .signer
    │   ├── SignerUnsupportedError        the signer has no way to sign this: .fix
    │   └── SignerResponseError           a remote signer's answer does not match the request
    ├── DelegationError                   delegating cannot be done or did not take effect
    │   └── AuthorizationSkippedError     an EIP-7702 authorization the chain would skip / skipped: .auth_nonce
    ├── ErrorNotRegistered (+LookupError) get_error_class() knows no such error
    ├── TransactionFailedError            a mined transaction failed: .tx_hash .receipt .revert
    │   └── TransactionRefusedError       the node refused it outright (in no pool, cannot land): .reason
    ├── NetworkError                      the node or bundler failed: .endpoint .method .hint
    │   ├── NodeUnavailableError          connection refused/reset, timeout
    │   ├── RateLimitedError              HTTP 429 / -32005 after retries: .retry_after
    │   ├── MalformedResponseError        an answer that is not JSON-RPC (cut, garbled)
    │   ├── ChainStateError               a contract the SDK relies on has no code (node restarted?)
    │   └── DeadlineExceededError (+TimeoutError)  the overall deadline passed
    ├── OutcomeUnknownError               sent (or maybe sent): .hash .kind .intent_id .sender .nonce
    ├── DuplicateIntentError              this intent already landed (or is in flight): .intent .hash
    ├── NonceConflictError                another process used the nonce; nothing landed: retryable
    ├── UserOperationError                EntryPoint/bundler refused an op:
    │   │                                 .code ("AA23") .reason .op_index .inner .data
    │   ├── FailedOp (+ContractRevertError)            FailedOp(uint256,string)
    │   └── FailedOpWithRevert (+ContractRevertError)  ... plus the decoded inner revert
    └── RevertError                       a call reverted: .data (raw revert bytes)
        ├── ContractRevertError           decoded: .name .args (dict) .selector .signature
        │   ├── RevertReasonError         Error(string): .reason
        │   ├── PanicError                Panic(uint256): .code .meaning
        │   └── <one class per ABI error> from register_contract_errors(abi); fields as
        │                                 attributes by ABI name (err.spent, err.cap)
        └── UnknownRevertError            revert data no registered ABI explains

Custom errors
-------------
:func:`register_contract_errors` builds one Python class per ``type: "error"`` entry of an ABI
(class name = error name) and caches it by selector, so ``except get_error_class("X")`` keeps
working across calls. The EntryPoint v0.8 errors are registered on first use.
:func:`decode_revert` maps revert data to an instance: custom errors, ``Error(string)``,
``Panic(uint256)``, and the EntryPoint's ``FailedOp``/``FailedOpWithRevert`` (whose inner revert
is decoded recursively). ``Error(string)`` reasons that carry an ``AAxx`` code (the EntryPoint's
``require`` strings, e.g. ``"AA93 invalid paymasterAndData"``) become :class:`UserOperationError`.

Attribute naming: an ABI field becomes an attribute of the same name; a camelCase name also
gets a snake_case alias (``err.validUntil`` and ``err.valid_until``). A field whose name would
shadow an exception attribute (``name``, ``args``, ``data``, ``selector``, ``signature``, ...)
or is a Python keyword gets a trailing underscore (``err.data_``); ``err.args`` always holds
every field under its exact ABI name. ``err.args`` is a dict here, unlike a plain exception's
tuple.

Secrets never appear in messages: :class:`InvalidInputError` with ``secret=True`` keeps neither
the value nor its text.
"""

from __future__ import annotations

import difflib
import json
import keyword
import operator
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

__all__ = [
    "AA_CODE_HINTS",
    "ChainMismatchError",
    "AuthorizationSkippedError",
    "ChainStateError",
    "DeadlineExceededError",
    "DuplicateIntentError",
    "TransactionRefusedError",
    "MalformedResponseError",
    "NetworkError",
    "NodeUnavailableError",
    "NonceConflictError",
    "OutcomeUnknownError",
    "RateLimitedError",
    "ContractRevertError",
    "DelegationError",
    "ErrorNotRegistered",
    "FailedOp",
    "FailedOpWithRevert",
    "InsufficientFundsError",
    "InvalidInputError",
    "NoSessionAllowsError",
    "NotDelegatedError",
    "PanicError",
    "RevertError",
    "RevertReasonError",
    "SignerError",
    "SignerResponseError",
    "SignerUnsupportedError",
    "SmartKeysError",
    "TransactionFailedError",
    "UnknownImplementationError",
    "UnknownRevertError",
    "UserOperationError",
    "decode_revert",
    "get_error_class",
    "parse_aa_code",
    "register_contract_errors",
    "registered_errors",
]


# --------------------------------------------------------------------------------------------
# formatting helpers (never print more than a short preview of any value)
# --------------------------------------------------------------------------------------------

_MAX_PREVIEW = 80


def _preview(value: Any) -> str:
    """A short, log-safe rendering of ``value`` for messages (bytes as 0x-hex, long text cut)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        text = "0x" + raw.hex()
        if len(text) > _MAX_PREVIEW:
            text = f"{text[:_MAX_PREVIEW - 12]}…({len(raw)} bytes)"
        return text
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        if value.bit_length() > 512:  # str() of a huge int is slow, and refused past 4300 digits
            return f"<an integer of {value.bit_length()} bits>"
        return str(value) if abs(value) < 10**12 else f"{value} ({hex(value)})"
    if isinstance(value, str):
        text = repr(value)
    elif isinstance(value, (list, tuple)):
        text = "[" + ", ".join(_preview(v) for v in value) + "]"
        if isinstance(value, tuple):
            text = "(" + text[1:-1] + ")"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{k}: {_preview(v)}" for k, v in value.items()) + "}"
    else:
        text = f"{type(value).__name__} {value!r}"
    if len(text) > _MAX_PREVIEW:
        text = text[: _MAX_PREVIEW - 1] + "…"
    return text


def _as_bytes(data: Any) -> bytes:
    """Revert data as bytes: accepts bytes-likes, 0x-hex strings and None (empty)."""
    if data is None:
        return b""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, str):
        text = data[2:] if data[:2] in ("0x", "0X") else data
        try:
            return bytes.fromhex(text)
        except ValueError:
            raise InvalidInputError(
                "data", data, "revert data as bytes or a 0x-prefixed hex string",
                "pass the raw revert bytes (e.g. the `data` of the RPC error)",
            ) from None
    raise InvalidInputError(
        "data", data, "revert data as bytes or a 0x-prefixed hex string",
        "pass the raw revert bytes (e.g. the `data` of the RPC error)",
    )


# --------------------------------------------------------------------------------------------
# root and domain exceptions
# --------------------------------------------------------------------------------------------


class SmartKeysError(Exception):
    """Root of every exception smartkeys raises. Catch this to catch them all."""

    def __reduce__(self) -> Any:
        # Subclasses take keyword arguments; rebuild from the message and attributes instead of
        # re-calling __init__ (plain exception pickling would pass the message as first argument).
        return (_restore_error, (type(self), str(self), dict(self.__dict__)))


def _restore_error(cls: type[SmartKeysError], message: str, state: dict[str, Any]) -> SmartKeysError:
    """Unpickling helper for :class:`SmartKeysError` subclasses with custom constructors."""
    obj = cls.__new__(cls)
    Exception.__init__(obj, message)
    obj.__dict__.update(state)
    return obj


class InvalidInputError(SmartKeysError, ValueError):
    """An argument failed validation. Raised before anything is signed or sent.

    Message shape: ``field 'x': expected <what>, got <value>; fix: <hint>``.

    >>> err = InvalidInputError("chain_id", 0, "a positive chain id", "pass the chain's id")
    >>> str(err)
    "field 'chain_id': expected a positive chain id, got 0; fix: pass the chain's id"
    >>> (err.field, err.value, isinstance(err, ValueError))
    ('chain_id', 0, True)
    >>> str(InvalidInputError("private_key", b"k" * 32, "32 bytes", secret=True))
    "field 'private_key': expected 32 bytes, got <redacted bytes>"
    """

    def __init__(
        self,
        field: str,
        value: Any,
        expected: str,
        hint: str | None = None,
        *,
        secret: bool = False,
    ) -> None:
        self.field = field
        self.expected = expected
        self.hint = hint
        if secret:
            # keep nothing derived from a secret on the exception (it may be logged or pickled)
            self.value = None
            shown = f"<redacted {type(value).__name__}>"
        else:
            self.value = value
            shown = _preview(value)
        message = f"field {field!r}: expected {expected}, got {shown}"
        if hint:
            message += f"; fix: {hint}"
        super().__init__(message)


class InsufficientFundsError(InvalidInputError):
    """A transaction's sender cannot pay for it (gas limit x max fee + value): nothing was signed or sent.

    ``address`` the sender, ``balance`` and ``required`` in wei (``required`` None when unknown). A subclass
    of :class:`InvalidInputError` (``field`` is ``"sender"``), so the CLI exits 2 with the fix.

    >>> str(InsufficientFundsError("0x00000000000000000000000000000000000000aa", 0, 21_000 * 10**9))
    "field 'sender': expected an address holding at least 0.000021 ETH for this transaction, got '0x00000000000000000000000000000000000000aa' (balance 0 ETH); fix: fund 0x00000000000000000000000000000000000000aa with ETH, then send again"
    """

    def __init__(self, address: str, balance: int | None, required: int | None = None) -> None:
        from decimal import Decimal

        def eth(wei: int) -> str:
            text = format(Decimal(int(wei)).scaleb(-18), "f")
            return (text.rstrip("0").rstrip(".") if "." in text else text) + " ETH"

        self.address = address
        self.balance = balance
        self.required = required
        need = f"at least {eth(required)}" if required is not None else "enough ETH"
        shown = "unknown" if balance is None else eth(balance)
        InvalidInputError.__init__(self, "sender", address, f"an address holding {need} for this transaction",
                                   f"fund {address} with ETH, then send again")
        Exception.__init__(self, str(self).replace(f"got {_preview(address)}",
                                                   f"got {_preview(address)} (balance {shown})", 1))


class ChainMismatchError(SmartKeysError):
    """The chain the RPC reports is not the chain the configuration names. Nothing was signed."""

    def __init__(self, expected: int, actual: int, *, source: str = "the RPC") -> None:
        self.expected = expected
        self.actual = actual
        self.source = source
        super().__init__(
            f"chain id mismatch: expected chain {expected} (configured), got chain {actual} "
            f"from {source}; fix: point the RPC URL at chain {expected}, or set chain_id to "
            f"{actual} if that chain is really intended"
        )


class NotDelegatedError(SmartKeysError):
    """The account does not run the smartkeys account code, so an owner or session action would do nothing.

    ``delegation`` is the address its EIP-7702 code points at (None: no code), ``runs`` a readable name for
    it (``"no code"``, ``"Simple7702Account"``, ...), ``expected`` the smartkeys implementation(s), ``action``
    what was refused. Nothing was signed or sent.
    """

    def __init__(self, account: str, delegation: str | None, expected: str, *, action: str, runs: str | None = None,
                 at_block: Any = None) -> None:
        self.account = account
        self.delegation = delegation
        self.expected = expected
        self.action = action
        self.runs = runs or ("no code" if delegation is None else delegation)
        self.at_block = at_block
        where = "" if at_block in (None, "latest") else f" at block {at_block}"
        if delegation is None:
            state = f"account {account} has no code{where} (it is not delegated to smartkeys)"
            fix = "delegate it first: Owner(w3, key).delegate() or `smartkeys delegate`"
        else:
            state = (f"account {account} runs {self.runs}{where} (its EIP-7702 delegation points at {delegation}), "
                     f"not the smartkeys account {expected}")
            fix = ("re-delegate it to smartkeys: Owner(w3, key).delegate() or `smartkeys delegate` "
                   "(sessions granted earlier are revoked unless keep_sessions=True)")
        super().__init__(f"cannot {action}: {state}; nothing was sent; fix: {fix}")


class UnknownImplementationError(SmartKeysError, ValueError):
    """A delegation target that is not a known smartkeys deployment (refused before anything is signed)."""

    def __init__(self, implementation: str, known: Iterable[str], chain_id: int) -> None:
        self.implementation = implementation
        self.known = tuple(known)
        self.chain_id = chain_id
        super().__init__(
            f"field 'implementation': expected a smartkeys account deployment on chain {chain_id} "
            f"({', '.join(self.known) or 'none known'}), got {implementation}; delegating an EOA hands that code "
            "full control of the account; fix: leave implementation unset (the canonical smartkeys address), "
            "record your deployment in deployments/<chainId>.json (`smartkeys deploy`), or, only for code you "
            "audited, pass dangerously_allow_unknown_implementation=True"
        )


class NoSessionAllowsError(SmartKeysError):
    """A key holds several live sessions and none of them allows the action (checked by the preflight).

    ``candidates`` is a tuple of ``(session_id, error)``, newest grant first: why each one refuses.
    Nothing was signed or sent.
    """

    def __init__(self, key: str, account: str, candidates: Iterable[tuple[bytes, BaseException]]) -> None:
        self.key = key
        self.account = account
        self.candidates = tuple(candidates)
        reasons = "; ".join(f"0x{sid.hex()}: {type(err).__name__}: {str(err)[:300]}" for sid, err in self.candidates)
        super().__init__(
            f"none of the {len(self.candidates)} live sessions of key {key} at {account} allows this action "
            f"({reasons}); nothing was sent; fix: pick one with --session ID (Python: policy_from_chain(w3, "
            "account, session_id)), or ask the owner for a grant that allows it"
        )


class SignerError(SmartKeysError):
    """A signer could not produce a signature smartkeys can use. Nothing was sent.

    ``operation`` names what was to be signed (``"EIP-7702 authorization"``, ``"user operation"``,
    ``"type-4 transaction"``...), ``signer`` the signer's repr (never a key), ``fix`` what to do.
    """

    def __init__(self, message: str, *, operation: str, signer: str, fix: str) -> None:
        self.operation = operation
        self.signer = signer
        self.fix = fix
        super().__init__(f"cannot sign the {operation} with {signer}: {message}; nothing was sent; fix: {fix}")


class SignerUnsupportedError(SignerError):
    """The signer has no way to sign this payload (a remote signer's JSON-RPC API has no method for it).

    >>> str(SignerUnsupportedError("no JSON-RPC method signs a raw hash", operation="EIP-7702 authorization",
    ...                            signer="JsonRpcSigner(0xab…)", fix="sign it with the keystore key once"))
    'cannot sign the EIP-7702 authorization with JsonRpcSigner(0xab…): no JSON-RPC method signs a raw hash; nothing was sent; fix: sign it with the keystore key once'
    """


class SignerResponseError(SignerError):
    """A signer answered, but not with what was asked: another address signed, another transaction came back,
    or the answer is not a signature. Nothing signed by it was sent."""


class DelegationError(SmartKeysError):
    """Delegating (EIP-7702) cannot be done or did not take effect: the account's code is not what was asked."""


class AuthorizationSkippedError(DelegationError):
    """An EIP-7702 authorization the chain would skip (before sending) or skipped (after mining).

    The chain skips a tuple whose nonce is not the authority's nonce at the time it is processed (or whose
    chain id is wrong) and still runs the transaction. ``auth_nonce`` is what the tuple carried,
    ``expected_nonce`` what the chain needed, ``tx_hash`` the mined transaction (None: caught before sending).
    """

    def __init__(self, authority: str, delegate: str, *, auth_nonce: int, expected_nonce: int | None,
                 current_delegation: str | None = None, tx_hash: str | bytes | None = None) -> None:
        if isinstance(tx_hash, (bytes, bytearray)):
            tx_hash = "0x" + bytes(tx_hash).hex()
        self.authority = authority
        self.delegate = delegate
        self.auth_nonce = auth_nonce
        self.expected_nonce = expected_nonce
        self.current_delegation = current_delegation
        self.tx_hash = tx_hash
        need = "" if expected_nonce is None else f", but the chain needed nonce {expected_nonce}"
        if tx_hash is None:
            head = (f"refusing to send: the authorization delegating {authority} to {delegate} carries nonce "
                    f"{auth_nonce}{need}, so the chain would skip it and the transaction would set no code")
        else:
            head = (f"authorization skipped in transaction {tx_hash}: {authority} still "
                    f"{'has no code' if current_delegation is None else 'delegates to ' + current_delegation}, "
                    f"not {delegate}; the authorization carried nonce {auth_nonce}{need} "
                    "(another transaction of this account was mined first, or the chain id was wrong)")
        super().__init__(f"{head}; fix: wait for the account's pending transactions to be mined, then delegate again")


class ErrorNotRegistered(SmartKeysError, LookupError):
    """:func:`get_error_class` was asked for a contract error no registered ABI declares."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        known = sorted(set(known))
        close = difflib.get_close_matches(name, known, n=3)
        message = f"no contract error named {name!r} is registered"
        if close:
            message += f" (did you mean {', '.join(close)}?)"
        message += "; fix: register the contract's ABI with register_contract_errors(abi)"
        super().__init__(message)


class TransactionFailedError(SmartKeysError):
    """A transaction was mined but failed (status 0), or never made it into a block.

    ``revert`` holds the decoded cause when the revert data could be obtained (also set as
    ``__cause__``).
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        tx_hash: str | bytes | None = None,
        receipt: Any = None,
        revert: SmartKeysError | None = None,
    ) -> None:
        if isinstance(tx_hash, (bytes, bytearray)):
            tx_hash = "0x" + bytes(tx_hash).hex()
        self.tx_hash = tx_hash
        self.receipt = receipt
        self.revert = revert
        if message is None:
            message = f"transaction {tx_hash or '<unknown hash>'} failed"
            gas_used = _get(receipt, "gasUsed")
            if gas_used is not None:
                message += f" (gas used {gas_used})"
            if revert is not None:
                message += f": {revert}"
            else:
                message += (
                    "; fix: replay it with eth_call at the same block to get the revert data, "
                    "then decode it with smartkeys.errors.decode_revert"
                )
        super().__init__(message)
        if revert is not None:
            self.__cause__ = revert


class TransactionRefusedError(TransactionFailedError):
    """The node refused a signed transaction outright (an answer that certainly means it is in no pool:
    insufficient funds for gas, an invalid signature, a gas limit above the block's...): it never spread and
    can never land. ``reason`` is the node's message, ``tx_hash`` the refused transaction's hash. Nothing
    moved; fix the cause (fund the sender, ...) and send again."""

    def __init__(self, reason: str, *, hash: bytes | str | None = None) -> None:
        self.reason = reason
        shown = _hex32(hash) or "<unknown hash>"
        fix = ("fund the sending address with ETH for gas" if "insufficient funds" in reason.lower()
               else "fix what the node names, then send again (nothing was paid)")
        super().__init__(f"transaction {shown} refused by the node ({reason}); it was not sent on and cannot land; "
                         f"fix: {fix}", tx_hash=_hex32(hash))


# --------------------------------------------------------------------------------------------
# network faults and unknown outcomes
# --------------------------------------------------------------------------------------------


class NetworkError(SmartKeysError):
    """The RPC node or the bundler could not be reached, or answered with something unusable.

    ``endpoint`` is the URL (query string dropped), ``method`` the JSON-RPC method, ``hint`` what to do.
    The CLI exits with code 4. Nothing here says whether a send landed: a fault while sending raises
    :class:`OutcomeUnknownError` instead.
    """

    default_hint = "check that the node / bundler is running and reachable, then run again"

    def __init__(self, message: str, *, endpoint: str | None = None, method: str | None = None,
                 hint: str | None = None) -> None:
        self.endpoint = endpoint.split("?")[0] if isinstance(endpoint, str) else endpoint
        self.method = method
        self.hint = hint or self.default_hint
        super().__init__(f"{message}; fix: {self.hint}" if self.hint else message)


class NodeUnavailableError(NetworkError):
    """No answer: connection refused or reset, or no answer within the request timeout."""

    default_hint = "start a node (e.g. `smartkeys node`) or point --rpc-url / SMARTKEYS_RPC_URL at a running one"


class RateLimitedError(NetworkError):
    """HTTP 429 (or JSON-RPC -32005) after the retries; ``retry_after`` seconds the server asked for, if any."""

    default_hint = "the endpoint is rate limiting: wait and run again, or use an endpoint with a higher limit"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)


class MalformedResponseError(NetworkError):
    """The answer was not a JSON-RPC response (cut mid-answer, garbled JSON, an HTML error page)."""

    default_hint = "the endpoint (or a proxy in front of it) returned a broken answer: run again, or check the proxy"


class ChainStateError(NetworkError):
    """A contract the SDK relies on returned no data (no code there): the node restarted and lost its
    state, or the RPC points at another chain."""

    default_hint = ("check that --rpc-url points at the chain where smartkeys is deployed; a local node that "
                    "restarted lost its state: deploy again (`smartkeys node` does)")


class DeadlineExceededError(NetworkError, TimeoutError):
    """The overall deadline of the operation (``smartkeys.rpc.deadline``, the CLI's ``--timeout``) passed."""

    default_hint = "the node or bundler is too slow: raise --timeout, or check the endpoint"


def _hex32(value: Any) -> str | None:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    return value


class OutcomeUnknownError(SmartKeysError):
    """Something was signed and may have been sent, but whether it landed is not known.

    Do not send it again: the same intent could land twice. ``hash`` is the user-op hash (``kind``
    ``"user_op"``) or the transaction hash (``"transaction"``), known before anything left the process;
    ``sender`` and ``nonce`` name its nonce lane (a user op's nonce is ``key << 64 | sequence``);
    ``intent_id`` its entry in the outbox (:mod:`smartkeys.outbox`). Settle it with
    :func:`smartkeys.outbox.settle` (or ``SessionAgent.settle``, or ``smartkeys pending --settle``): that looks
    the hash up on chain and at the bundler, and re-sends the *same* signed operation if its nonce is still
    free (at most once on chain, whatever happens). The CLI exits with code 4.
    """

    def __init__(self, *, hash: bytes | str, kind: str, sender: str, nonce: int, intent_id: str | None = None,
                 cause: BaseException | None = None, detail: str | None = None) -> None:
        self.hash = _hex32(hash)
        self.kind = kind
        self.sender = sender
        self.nonce = nonce
        self.intent_id = intent_id
        self.cause = cause
        what = "user operation" if kind == "user_op" else "transaction"
        why = detail or (f"{type(cause).__name__}: {' '.join(str(cause).split())[:200]}" if cause else "no answer")
        super().__init__(
            f"outcome unknown: {what} {self.hash} (sender {sender}, nonce {nonce}) was sent but its result is not "
            f"known ({why}); fix: do NOT send it again; settle it: `smartkeys pending --settle` or "
            f"smartkeys.outbox.settle(...) looks the hash up and tells whether it landed")
        if cause is not None:
            self.__cause__ = cause


class DuplicateIntentError(SmartKeysError):
    """The same intent was already sent: it landed (``status`` ``"landed"``/``"reverted"``) or may still
    land (``"pending"``). Nothing was sent now. ``intent_id``, ``hash`` and ``transaction_hash`` name it."""

    def __init__(self, *, intent_id: str, status: str, hash: bytes | str, transaction_hash: bytes | str | None = None,
                 named: bool = False, settled: bool = False) -> None:
        self.intent_id = intent_id
        self.status = status
        self.named = named
        self.settled = settled
        self.hash = _hex32(hash)
        self.transaction_hash = _hex32(transaction_hash)
        where = f" in transaction {self.transaction_hash}" if self.transaction_hash else ""
        if settled:  # an unknown outcome, settled as landed: a retry of the same calls is a likely double pay
            state = f"landed as {self.hash}{where} (its outcome was unknown, then settled)"
            fix = ("nothing to do, it is paid; to pay the same thing once more on purpose, name the new payment "
                   "(intent='…', CLI --intent NAME) or pass repeat=True (CLI --repeat)")
        elif status == "pending":
            state = f"was sent as {self.hash} and may still land"
            fix = "settle it first (`smartkeys pending --settle`); if it did not land, the retry goes through"
        else:
            state = f"already landed as {self.hash}{where}"
            fix = ("nothing to do; to send the same thing once more on purpose, give it a new name (intent='…', "
                   "CLI --intent NAME)") if not named else "pick another intent name for a new payment"
        super().__init__(f"not sent again: intent {intent_id} {state}; fix: {fix}")


class NonceConflictError(SmartKeysError):
    """Another process (or another client of the same key) used the nonce first; this intent did not land.

    Retryable: build it again with a fresh nonce. ``sender`` and ``nonce`` name the lane; ``hash`` what was refused.
    """

    retryable = True

    def __init__(self, *, sender: str, nonce: int, hash: bytes | str | None = None, detail: str = "") -> None:
        self.sender = sender
        self.nonce = nonce
        self.hash = _hex32(hash)
        super().__init__(
            f"nonce conflict: nonce {nonce} of {sender} was used by another sender of the same key ({detail or 'nonce too low'}); "
            "this one did not land; fix: retry (a fresh nonce is read), and give each process its own session key "
            "to avoid the race")


def _get(obj: Any, key: str) -> Any:
    """``obj[key]`` or ``obj.key`` or None (receipts are dicts or AttributeDicts)."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


# --------------------------------------------------------------------------------------------
# user operations (EntryPoint AAxx codes)
# --------------------------------------------------------------------------------------------

#: What each EntryPoint v0.8 ``AAxx`` code means and how to fix it (codes taken from the v0.8
#: sources: ``FailedOp`` reasons and ``require`` strings of EntryPoint and SenderCreator).
AA_CODE_HINTS: dict[str, str] = {
    "AA10": "the sender already has code: drop factory/initCode",
    "AA13": "account creation (or the EIP-7702 init call) reverted or ran out of gas: "
    "check factory_data, raise verification_gas_limit, see .inner",
    "AA14": "the factory created a different address than sender: fix sender or factory_data",
    "AA15": "the factory returned sender but left it without code: fix the factory",
    "AA20": "the sender has no code: for EIP-7702 attach eip7702_auth (or delegate first), "
    "otherwise set factory/factory_data",
    "AA21": "the account did not pay the prefund: fund the account (or its EntryPoint deposit) "
    "with at least op.max_gas_cost(), or use a paymaster",
    "AA22": "the block time is outside the op's validity window (validAfter exclusive, "
    "validUntil inclusive): the session key may have expired or not started yet",
    "AA23": "the account's validateUserOp reverted: see .inner for the decoded error",
    "AA24": "signature rejected: wrong key, wrong chain id or entry point, a 7702 hash built "
    "with the wrong delegate, or a revoked/expired session key",
    "AA25": "invalid nonce: re-read EntryPoint.getNonce(sender, key) and rebuild the op",
    "AA26": "validation used more gas than verification_gas_limit: re-estimate and raise it",
    "AA30": "the paymaster has no code: check the paymaster address and chain",
    "AA31": "the paymaster's EntryPoint deposit is too low: top it up or choose another paymaster",
    "AA32": "the paymaster's validity window excludes the block time: get fresh paymaster data",
    "AA33": "the paymaster's validatePaymasterUserOp reverted: see .inner",
    "AA34": "the paymaster signature was rejected: get fresh paymaster data for this exact op",
    "AA36": "paymaster validation used more gas than paymaster_verification_gas_limit: raise it",
    "AA90": "the bundle's beneficiary is the zero address: pass a beneficiary to handleOps",
    "AA91": "paying the beneficiary failed: use a beneficiary that accepts ETH",
    "AA92": "innerHandleOp is internal to the EntryPoint: do not call it directly",
    "AA93": "paymasterAndData is shorter than 52 bytes: set paymaster and both paymaster gas limits",
    "AA94": "a gas limit or fee exceeds 2**120-1: lower it (EntryPoint v0.8 rejects larger values)",
    "AA95": "the bundle transaction ran out of gas: raise the transaction gas limit",
    "AA97": "SenderCreator may only be called by the EntryPoint",
    "AA98": "paymaster is the zero address: leave paymaster unset instead",
    "AA99": "initCode is shorter than 20 bytes: give a full factory address",
}

_AA_RE = re.compile(r"^\s*(AA\d\d)\b")


def parse_aa_code(reason: str | None) -> str | None:
    """The ``AAxx`` code at the start of an EntryPoint reason string, or None.

    >>> parse_aa_code("AA23 reverted")
    'AA23'
    >>> parse_aa_code("UserOperation reverted during simulation with reason: AA21 didn't pay prefund")
    'AA21'
    >>> parse_aa_code("out of gas") is None
    True
    """
    if not reason:
        return None
    match = _AA_RE.match(reason)
    if match:
        return match.group(1)
    found = re.search(r"\b(AA\d\d)\b", reason)  # bundlers wrap the reason in their own text
    return found.group(1) if found else None


class UserOperationError(SmartKeysError):
    """The EntryPoint (on chain or in a bundler's simulation) refused a user operation.

    ``code`` is the ``AAxx`` code (None when the reason has none), ``reason`` the full reason
    string, ``op_index`` the op's index in the bundle (None if unknown), ``inner`` the decoded
    inner revert (for ``AA23``/``AA33``/``AA13``), ``data`` the raw revert data if known.

    >>> err = UserOperationError("AA25 invalid account nonce", op_index=0)
    >>> err.code, err.op_index
    ('AA25', 0)
    >>> print(err)
    user operation 0 failed: AA25 invalid account nonce; fix: invalid nonce: re-read EntryPoint.getNonce(sender, key) and rebuild the op
    """

    def __init__(
        self,
        reason: str,
        *,
        code: str | None = None,
        op_index: int | None = None,
        inner: SmartKeysError | None = None,
        data: bytes | None = None,
    ) -> None:
        self.reason = reason
        self.code = code if code is not None else parse_aa_code(reason)
        self.op_index = op_index
        self.inner = inner
        self.data = data
        Exception.__init__(self, self._describe())
        if inner is not None:
            self.__cause__ = inner

    def _describe(self) -> str:
        where = "user operation" if self.op_index is None else f"user operation {self.op_index}"
        message = f"{where} failed: {self.reason}"
        if self.inner is not None:
            message += f" <- {self.inner}"
        hint = AA_CODE_HINTS.get(self.code or "")
        if hint:
            message += f"; fix: {hint}"
        return message


# --------------------------------------------------------------------------------------------
# reverts
# --------------------------------------------------------------------------------------------


class RevertError(SmartKeysError):
    """A call or transaction reverted. ``data`` is the raw revert data (may be empty)."""

    data: bytes

    def __init__(
        self, message: str = "execution reverted", *, data: bytes | str | None = b""
    ) -> None:
        self.data = _as_bytes(data)
        super().__init__(message)


class UnknownRevertError(RevertError):
    """Revert data that no registered ABI explains (or empty data: a bare revert or out of gas)."""

    def __init__(self, data: bytes | str | None = b"", detail: str | None = None) -> None:
        self.data = _as_bytes(data)
        if detail is None:
            if not self.data:
                detail = (
                    "reverted without data (a bare revert(), an out-of-gas, or a call to an "
                    "address without code)"
                )
            elif len(self.data) < 4:
                detail = f"reverted with {len(self.data)} bytes of data, too short for a selector"
            else:
                detail = (
                    f"reverted with unknown error selector 0x{self.data[:4].hex()} "
                    f"({len(self.data)} bytes: {_preview(self.data)}); fix: register the "
                    "reverting contract's ABI with smartkeys.errors.register_contract_errors(abi) "
                    "or pass abis=[...] to decode_revert"
                )
        super().__init__(detail, data=self.data)


_RESERVED_ATTRS = frozenset(
    {"name", "args", "data", "selector", "signature", "message", "hint", "with_traceback",
     "add_note", "field_names", "abi_names", "abi_types", "error_name", "error_signature",
     "error_selector", "abi_entry", "values", "code", "reason", "meaning", "inner", "op_index"}
)


class ContractRevertError(RevertError):
    """A revert decoded against a known error signature.

    Subclasses (one per contract error, built by :func:`register_contract_errors`) carry class
    attributes ``error_name``, ``error_signature``, ``error_selector``, ``abi_types``,
    ``abi_names`` and ``field_names``. Instances expose each field as an attribute, ``.name``
    (the error name), ``.args`` (dict by ABI name), ``.selector`` and ``.data`` (raw revert
    bytes; re-encoded from the values when the instance was built by hand).

    Build one by hand with positional values or keyword fields (ABI or attribute names)::

        SpendCapExceeded = get_error_class("SpendCapExceeded")
        err = SpendCapExceeded(token, spent=150, cap=100)
    """

    error_name: ClassVar[str] = ""
    error_signature: ClassVar[str] = ""
    error_selector: ClassVar[bytes] = b""
    abi_types: ClassVar[tuple[str, ...]] = ()
    abi_names: ClassVar[tuple[str, ...]] = ()
    field_names: ClassVar[tuple[str, ...]] = ()
    abi_entry: ClassVar[dict[str, Any] | None] = None
    hint: ClassVar[str | None] = None

    def __init__(self, *values: Any, data: bytes | str | None = None, **fields: Any) -> None:
        self._assign(values, fields, data)
        Exception.__init__(self, self._describe())

    def _assign(self, values: tuple[Any, ...], fields: dict[str, Any], data: Any) -> None:
        """Set the field attributes, ``values`` and ``data`` from positional/keyword fields."""
        cls = type(self)
        names = cls.field_names
        if len(values) > len(names):
            raise TypeError(
                f"{cls.__name__} takes {len(names)} field values ({', '.join(names) or 'none'}), "
                f"got {len(values)}"
            )
        by_attr = dict(zip(names, values, strict=False))  # the rest may come as keywords
        abi_to_attr = dict(zip(cls.abi_names, names, strict=True))
        for key, value in fields.items():
            attr = key if key in names else abi_to_attr.get(key)
            if attr is None:
                raise TypeError(
                    f"{cls.__name__} has no field {key!r}; fields: {', '.join(names) or 'none'}"
                )
            if attr in by_attr:
                raise TypeError(f"{cls.__name__} got field {key!r} twice")
            by_attr[attr] = value
        missing = [n for n in names if n not in by_attr]
        if missing:
            raise TypeError(f"{cls.__name__} is missing field(s): {', '.join(missing)}")
        self.values = tuple(by_attr[n] for n in names)
        for attr, value in zip(names, self.values, strict=True):
            setattr(self, attr, value)
        if data is None:
            try:
                data = cls.error_selector + abi_encode(list(cls.abi_types), list(self.values))
            except Exception:  # values that do not encode (hand-built with odd types)
                data = b""
        self.data = _as_bytes(data)

    # ``name``/``args``/``selector``/``signature`` are read-only views over the class and values
    @property
    def name(self) -> str:
        """The Solidity error name, e.g. ``"SpendCapExceeded"``."""
        return type(self).error_name or type(self).__name__

    @property
    def args(self) -> dict[str, Any]:  # type: ignore[override]  # shadows BaseException.args on purpose
        """Every field by its exact ABI name (a dict, not the usual exception tuple)."""
        return dict(zip(type(self).abi_names, self.values, strict=True))

    @property
    def selector(self) -> bytes:
        """The 4-byte error selector."""
        return type(self).error_selector

    @property
    def signature(self) -> str:
        """The canonical error signature, e.g. ``"SpendCapExceeded(address,uint256,uint256)"``."""
        return type(self).error_signature

    def _describe(self) -> str:
        cls = type(self)
        shown = ", ".join(f"{n}={_preview(v)}" for n, v in zip(cls.abi_names, self.values, strict=True))
        message = f"reverted with {self.name}({shown})"
        if cls.hint:
            message += f"; fix: {cls.hint}"
        return message

    def describe(self, units: Any = None, *, now: int | None = None) -> str:
        """This refusal in the policy's own units (what was asked, what is left, what to do), or ``str(self)``
        for an error :func:`smartkeys.refusals.explain` does not know. ``units``: a
        :class:`smartkeys.refusals.Units` (token symbols and decimals, function names, the policy)."""
        from smartkeys.refusals import explain

        return explain(self, units, now=now) or str(self)

    def humanize(self, units: Any = None, *, now: int | None = None) -> ContractRevertError:
        """Make ``str(self)`` the :meth:`describe` text (class, fields and ``data`` unchanged); returns self."""
        from smartkeys.refusals import explain

        text = explain(self, units, now=now)
        if text is not None:
            Exception.__init__(self, text)
        return self

    def __reduce__(self) -> Any:
        cls = type(self)
        if cls.abi_entry is None:  # a static class: picklable by reference
            return (_restore_error, (cls, str(self), dict(self.__dict__)))
        return (_restore_contract_error, (cls.abi_entry, str(self), dict(self.__dict__)))

    @classmethod
    def from_data(cls, data: bytes) -> ContractRevertError:
        """Decode ``selector ‖ abi.encode(fields)`` into an instance of this class."""
        data = _as_bytes(data)
        if data[:4] != cls.error_selector:
            raise InvalidInputError(
                "data", data, f"revert data starting with {cls.name_hint()} selector "
                f"0x{cls.error_selector.hex()}", "use decode_revert(data) to pick the class",
            )
        return cls(*cls._decode_values(data), data=data)

    @classmethod
    def _decode_values(cls, data: bytes) -> list[Any]:
        """ABI-decode the fields after the selector (addresses checksummed)."""
        decoded = abi_decode(list(cls.abi_types), data[4:])
        return [_normalize(t, v) for t, v in zip(cls.abi_types, decoded, strict=True)]

    @classmethod
    def name_hint(cls) -> str:
        """``error_signature`` or the class name (for messages)."""
        return cls.error_signature or cls.__name__


def _restore_contract_error(entry: dict[str, Any], message: str, state: dict[str, Any]) -> Any:
    """Unpickling helper: find (or rebuild) the class from its ABI entry, then restore state."""
    cls = _class_for_entry(entry, hint=None)
    return _restore_error(cls, message, state)


_PANIC_MEANINGS = {
    0x00: "generic compiler panic",
    0x01: "assert(false)",
    0x11: "arithmetic overflow or underflow",
    0x12: "division or modulo by zero",
    0x21: "conversion to an invalid enum value",
    0x22: "incorrectly encoded storage byte array",
    0x31: "pop() on an empty array",
    0x32: "array index out of bounds",
    0x41: "too much memory allocated",
    0x51: "call to a zero-initialized internal function",
}


class RevertReasonError(ContractRevertError):
    """``revert("reason")`` / ``require(cond, "reason")``: the ``Error(string)`` revert."""

    error_name = "Error"
    error_signature = "Error(string)"
    error_selector = keccak(text="Error(string)")[:4]
    abi_types = ("string",)
    abi_names = ("reason",)
    field_names = ("reason",)

    def _describe(self) -> str:
        return f"reverted with reason {self.reason!r}"  # type: ignore[attr-defined]


class PanicError(ContractRevertError):
    """A Solidity panic, ``Panic(uint256)`` (overflow, assert, out-of-bounds index, ...)."""

    error_name = "Panic"
    error_signature = "Panic(uint256)"
    error_selector = keccak(text="Panic(uint256)")[:4]
    abi_types = ("uint256",)
    abi_names = ("code",)
    field_names = ("code",)

    @property
    def meaning(self) -> str:
        """What the panic code means, per the Solidity documentation."""
        return _PANIC_MEANINGS.get(self.code, "unknown panic code")  # type: ignore[attr-defined]

    def _describe(self) -> str:
        return f"panicked with code {hex(self.code)}: {self.meaning}"  # type: ignore[attr-defined]


class FailedOp(UserOperationError, ContractRevertError):
    """EntryPoint ``FailedOp(uint256 opIndex, string reason)``: an op failed validation.

    Both a :class:`UserOperationError` (``.code``, ``.reason``, ``.op_index``) and a
    :class:`ContractRevertError` (``.name``, ``.args``, ``.data``).
    """

    error_name = "FailedOp"
    error_signature = "FailedOp(uint256,string)"
    error_selector = keccak(text="FailedOp(uint256,string)")[:4]
    abi_types: ClassVar[tuple[str, ...]] = ("uint256", "string")
    abi_names: ClassVar[tuple[str, ...]] = ("opIndex", "reason")
    field_names: ClassVar[tuple[str, ...]] = ("op_index", "reason")
    data: bytes  # always set by _assign (RevertError's type; UserOperationError's allows None)

    def __init__(
        self,
        *values: Any,
        data: bytes | str | None = None,
        inner: SmartKeysError | None = None,
        **fields: Any,
    ) -> None:
        self._assign(values, fields, data)
        self.code = parse_aa_code(self.reason)
        self.inner = inner
        Exception.__init__(self, UserOperationError._describe(self))
        if inner is not None:
            self.__cause__ = inner


class FailedOpWithRevert(FailedOp):
    """EntryPoint ``FailedOpWithRevert(uint256 opIndex, string reason, bytes inner)``.

    ``inner`` is the decoded inner revert (account, paymaster or 7702-init error) and
    ``inner_data`` its raw bytes (the EntryPoint truncates them to 2048 bytes). Caveat from
    the v0.8 sources: ``AA13 EIP7702 sender init failed`` is raised by SenderCreator with
    ``opIndex`` hard-coded to 0, whatever the op's position in the bundle.
    """

    error_name = "FailedOpWithRevert"
    error_signature = "FailedOpWithRevert(uint256,string,bytes)"
    error_selector = keccak(text="FailedOpWithRevert(uint256,string,bytes)")[:4]
    abi_types = ("uint256", "string", "bytes")
    abi_names = ("opIndex", "reason", "inner")
    field_names = ("op_index", "reason", "inner_data")

    def __init__(
        self,
        *values: Any,
        data: bytes | str | None = None,
        inner: SmartKeysError | None = None,
        **fields: Any,
    ) -> None:
        if isinstance(inner, (bytes, bytearray, memoryview, str)):  # the ABI field, by ABI name
            fields["inner_data"], inner = inner, None
        self._assign(values, fields, data)
        if inner is None:
            inner = _decode(_as_bytes(self.inner_data), depth=1)  # type: ignore[attr-defined]
        FailedOp.__init__(self, *self.values, data=self.data, inner=inner)

    @classmethod
    def from_data(cls, data: bytes, *, _depth: int = 0) -> ContractRevertError:
        """Decode, decoding the inner revert one level deeper (bounded recursion)."""
        data = _as_bytes(data)
        values = cls._decode_values(data)
        return cls(*values, data=data, inner=_decode(values[2], depth=_depth + 1))


# --------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------

_lock = threading.RLock()
_BY_SELECTOR: dict[bytes, type[ContractRevertError]] = {}
_defaults_loaded = False

for _static in (RevertReasonError, PanicError, FailedOp, FailedOpWithRevert):
    _BY_SELECTOR[_static.error_selector] = _static
del _static


def _abi_type(param: Mapping[str, Any]) -> str:
    """Canonical type string of an ABI parameter (tuples expanded: ``(address,uint256)[]``)."""
    typ = param["type"]
    if typ.startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param.get("components", []))
        return f"({inner}){typ[len('tuple'):]}"
    return typ


def _normalize(typ: str, value: Any) -> Any:
    """Decoded ABI value with addresses checksummed, recursing into tuples and arrays."""
    if typ.endswith("]"):
        base = typ[: typ.rindex("[")]
        return tuple(_normalize(base, v) for v in value)
    if typ.startswith("("):
        parts = _split_tuple(typ[1:-1])
        return tuple(_normalize(t, v) for t, v in zip(parts, value, strict=True))
    if typ == "address":
        return to_checksum_address(value)
    return value


def _split_tuple(body: str) -> list[str]:
    """Split ``a,(b,c)[],d`` at top-level commas."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(body):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(body[start:i])
            start = i + 1
    if body:
        parts.append(body[start:])
    return parts


def _snake(name: str) -> str:
    """camelCase -> snake_case (``validUntil`` -> ``valid_until``, ``opIndex`` -> ``op_index``)."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _attr_name(abi_name: str, index: int) -> str:
    """Attribute name for an ABI field: its own name, made safe (see module docstring)."""
    name = abi_name or f"arg{index}"
    if keyword.iskeyword(name) or name in _RESERVED_ATTRS or name.startswith("__"):
        name += "_"
    return name


def _class_for_entry(entry: Mapping[str, Any], hint: str | None) -> type[ContractRevertError]:
    """The (cached) exception class for one ABI ``error`` entry; built on first sight."""
    name = entry["name"]
    types = tuple(_abi_type(p) for p in entry.get("inputs", []))
    signature = f"{name}({','.join(types)})"
    selector = keccak(text=signature)[:4]
    with _lock:
        cls = _BY_SELECTOR.get(selector)
        if cls is not None:
            if hint is not None:
                cls.hint = hint
            return cls
        abi_names = tuple(p.get("name") or f"arg{i}" for i, p in enumerate(entry.get("inputs", [])))
        attrs = tuple(_attr_name(p.get("name", ""), i) for i, p in enumerate(entry.get("inputs", [])))
        namespace: dict[str, Any] = {
            "__module__": __name__,
            "__qualname__": name,
            "__doc__": f"Contract custom error ``{signature}`` (selector 0x{selector.hex()}).",
            "error_name": name,
            "error_signature": signature,
            "error_selector": selector,
            "abi_types": types,
            "abi_names": abi_names,
            "field_names": attrs,
            "abi_entry": json.loads(json.dumps(dict(entry))),  # private copy, JSON-safe
            "hint": hint,
        }
        for attr in attrs:
            alias = _snake(attr)
            if alias != attr and alias not in attrs and alias not in _RESERVED_ATTRS \
                    and not keyword.iskeyword(alias):
                namespace[alias] = property(operator.attrgetter(attr), doc=f"Alias of ``{attr}``.")
        cls = type(name, (ContractRevertError,), namespace)
        _BY_SELECTOR[selector] = cls
        return cls


def _abi_entries(abi: Any) -> list[Mapping[str, Any]]:
    """ABI as a list of entries: accepts a list, an artifact dict with ``abi``, or JSON text."""
    if isinstance(abi, str):
        abi = json.loads(abi)
    if isinstance(abi, Mapping):
        if "abi" not in abi:
            raise InvalidInputError(
                "abi", abi, "an ABI list or an artifact dict with an 'abi' key",
                "pass artifacts.load(name)['abi']",
            )
        abi = abi["abi"]
    if not isinstance(abi, (list, tuple)):
        raise InvalidInputError(
            "abi", abi, "an ABI list or an artifact dict with an 'abi' key",
            "pass artifacts.load(name)['abi']",
        )
    return list(abi)


def register_contract_errors(
    abi: Any, *, hints: Mapping[str, str] | None = None
) -> dict[str, type[ContractRevertError]]:
    """Build (or fetch) one exception class per ``type: "error"`` entry of ``abi``.

    Classes are cached by selector: registering the same ABI twice returns the same classes,
    so ``except`` clauses keep matching. ``hints`` maps an error name to a "fix" suggestion
    appended to its message. Returns ``{error_name: class}``.

    >>> abi = [{"type": "error", "name": "SpendCapExceeded", "inputs": [
    ...     {"name": "token", "type": "address"}, {"name": "spent", "type": "uint256"},
    ...     {"name": "cap", "type": "uint256"}]}]
    >>> cls = register_contract_errors(abi)["SpendCapExceeded"]
    >>> issubclass(cls, ContractRevertError), cls.error_signature
    (True, 'SpendCapExceeded(address,uint256,uint256)')
    >>> err = cls("0x" + "11" * 20, 150, 100)
    >>> (err.spent, err.cap, err.args["cap"])
    (150, 100, 100)
    """
    hints = dict(hints or {})
    out: dict[str, type[ContractRevertError]] = {}
    for entry in _abi_entries(abi):
        if isinstance(entry, Mapping) and entry.get("type") == "error":
            cls = _class_for_entry(entry, hints.get(entry["name"]))
            out[entry["name"]] = cls
    return out


def _ensure_defaults() -> None:
    """Register the EntryPoint v0.8 errors the first time the registry is used."""
    global _defaults_loaded
    if _defaults_loaded:
        return
    with _lock:
        if _defaults_loaded:
            return
        from smartkeys import artifacts  # late import: keep `import smartkeys.errors` cheap

        register_contract_errors(artifacts.load("vendor/EntryPoint")["abi"])
        _defaults_loaded = True


def registered_errors() -> dict[str, type[ContractRevertError]]:
    """Every registered error class by signature (``"FailedOp(uint256,string)"`` -> class)."""
    _ensure_defaults()
    with _lock:
        return {cls.error_signature: cls for cls in _BY_SELECTOR.values()}


def get_error_class(name: str) -> type[ContractRevertError]:
    """The registered exception class for a contract error, by name or full signature.

    ``get_error_class("FailedOp")`` and ``get_error_class("FailedOp(uint256,string)")`` give
    the same class. An overloaded name (two signatures) must be given as a signature.

    >>> get_error_class("FailedOp") is FailedOp
    True
    """
    _ensure_defaults()
    with _lock:
        classes = list(_BY_SELECTOR.values())
    if "(" in name:
        matches = [c for c in classes if c.error_signature == name.replace(" ", "")]
    else:
        matches = [c for c in classes if c.error_name == name]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ErrorNotRegistered(name, [c.error_name for c in classes])
    signatures = ", ".join(sorted(c.error_signature for c in matches))
    raise InvalidInputError(
        "name", name, "an unambiguous error name", f"give the full signature, one of: {signatures}"
    )


# --------------------------------------------------------------------------------------------
# decoder
# --------------------------------------------------------------------------------------------

_MAX_DEPTH = 8


def decode_revert(data: bytes | str | None, abis: Iterable[Any] | None = None) -> SmartKeysError:
    """Turn revert data into the matching smartkeys exception (returned, not raised).

    * a registered custom error -> an instance of its class (fields as attributes);
    * ``Error(string)`` -> :class:`RevertReasonError`, or :class:`UserOperationError` when the
      reason starts with an EntryPoint ``AAxx`` code;
    * ``Panic(uint256)`` -> :class:`PanicError`;
    * EntryPoint ``FailedOp`` / ``FailedOpWithRevert`` -> :class:`FailedOp` /
      :class:`FailedOpWithRevert` (both :class:`UserOperationError`), inner revert decoded;
    * anything else (including empty data) -> :class:`UnknownRevertError`.

    ``abis`` (ABIs, artifact dicts or JSON) are registered first, so their errors decode too.

    >>> from eth_abi import encode
    >>> err = decode_revert(bytes.fromhex("08c379a0") + encode(["string"], ["nope"]))
    >>> type(err).__name__, err.reason
    ('RevertReasonError', 'nope')
    """
    for abi in abis or ():
        register_contract_errors(abi)
    return _decode(_as_bytes(data), depth=0)


def _decode(data: bytes, depth: int) -> SmartKeysError:
    """:func:`decode_revert` body with a recursion guard for nested ``FailedOpWithRevert``."""
    _ensure_defaults()
    if len(data) < 4:
        return UnknownRevertError(data)
    if depth > _MAX_DEPTH:
        return UnknownRevertError(data, f"revert nested deeper than {_MAX_DEPTH} levels, not decoded")
    with _lock:
        cls = _BY_SELECTOR.get(data[:4])
    if cls is None:
        return UnknownRevertError(data)
    try:
        if issubclass(cls, FailedOpWithRevert):
            err = cls.from_data(data, _depth=depth)
        else:
            err = cls.from_data(data)
    except Exception as exc:  # malformed or truncated payload for a known selector
        return UnknownRevertError(
            data,
            f"revert data has the selector of {cls.error_signature} but does not decode "
            f"({type(exc).__name__}: {exc}); it may be truncated (the EntryPoint keeps 2048 "
            f"bytes of inner reverts): {_preview(data)}",
        )
    if isinstance(err, RevertReasonError) and _AA_RE.match(err.reason):  # type: ignore[attr-defined]
        return UserOperationError(err.reason, data=data)  # type: ignore[attr-defined]
    return err
