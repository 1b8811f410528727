"""A small ERC-4337 bundler JSON-RPC client (EntryPoint v0.8, ERC-7769 methods).

:class:`BundlerClient` speaks ``eth_supportedEntryPoints``, ``eth_chainId``,
``eth_estimateUserOperationGas``, ``eth_sendUserOperation``, ``eth_getUserOperationReceipt`` and
``eth_getUserOperationByHash``, sending user operations in their ``PackedUserOperation.to_rpc()`` form
(an EIP-7702 op's factory as the short marker ``"0x7702"``, which bundlers require).

Retries: HTTP 429 and 5xx, connection errors, timeouts, and JSON-RPC rate-limit errors (``-32005``, or
``-32603`` whose message mentions a rate limit) are retried with capped, jittered exponential backoff
(``backoff * 2**attempt``, at most ``max_backoff``, times a random factor in [0.5, 1]; a ``Retry-After``
header is honoured up to ``max_backoff``). Validation errors are never retried.

Errors (every one a :class:`~smartkeys.errors.SmartKeysError`)::

    BundlerError                         .method
    ├── BundlerConnectionError           network failure, HTTP error or rate limit after the retries: .status
    │   └── BundlerTimeoutError (+TimeoutError)   no answer (or no receipt) in time
    ├── BundlerRPCError                  any other JSON-RPC error: .code .message .rpc_data
    ├── BundlerEntryPointError           the bundler does not serve the EntryPoint: .entry_point .supported
    └── BundlerUserOperationError (+UserOperationError)
                                         the bundler refused the op: .code ("AA24"), .rpc_code (-32507),
                                         .inner (revert data decoded with decode_revert)

The ``bundler=`` seam (how a user operation leaves the process): :class:`Bundler` is the protocol that
:meth:`~smartkeys.account.Owner.send_user_op` and :meth:`~smartkeys.account.SessionAgent.batch` take, with
two implementations side by side, as httpx separates transports:

- :class:`SelfBundler`: a funded account (any eth-account ``BaseAccount``) signs and sends
  ``EntryPoint.handleOps`` itself (the outbox records the signed bundle transaction, ``via="self_bundled"``);
- :class:`BundlerClient`: an ERC-4337 bundler service (``eth_estimateUserOperationGas``,
  ``eth_sendUserOperation``, ``eth_getUserOperationReceipt``; the outbox records the op, ``via="bundler"``).

:func:`as_bundler` turns a bare account into a :class:`SelfBundler`: ``bundler=relayer`` keeps working as a
shorthand for ``bundler=SelfBundler(relayer)``.

Transport seam: ``transport`` is a callable taking the JSON-RPC request (a dict) and returning the decoded
JSON response (a dict). It signals HTTP failures by raising :class:`BundlerHTTPError` (status, body,
``retry_after``), connection failures with ``OSError``/``ConnectionError`` and timeouts with
``TimeoutError``. The default, :class:`UrllibTransport`, uses only the standard library.
"""

from __future__ import annotations

import http.client
import itertools
import json
import random
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from eth_utils import to_checksum_address

from smartkeys.deployments import ENTRY_POINT_V08
from smartkeys.encoding import checked_address, checked_bytes, parse_quantity
from smartkeys.errors import (
    ChainMismatchError,
    FailedOp,
    InvalidInputError,
    NetworkError,
    SmartKeysError,
    UnknownRevertError,
    UserOperationError,
    decode_revert,
    parse_aa_code,
)
from smartkeys.userop import PackedUserOperation

if TYPE_CHECKING:
    from eth_account.signers.base import BaseAccount

    from smartkeys.account import AgentReceipt, Owner, SessionAgent
    from smartkeys.entrypoint import UserOpResult

__all__ = [
    "Bundler",
    "BundlerClient",
    "BundlerConnectionError",
    "BundlerEntryPointError",
    "BundlerError",
    "BundlerHTTPError",
    "BundlerRPCError",
    "BundlerTimeoutError",
    "BundlerUserOperationError",
    "GasEstimate",
    "SelfBundler",
    "Transport",
    "UrllibTransport",
    "UserOperationByHash",
    "UserOperationReceipt",
    "as_bundler",
]

Transport = Callable[[dict[str, Any]], dict[str, Any]]

#: JSON-RPC codes that mean "slow down" (EIP-1474 limit exceeded).
RATE_LIMIT_CODES = frozenset({-32005})
_RETRY_HTTP = frozenset({429, 500, 502, 503, 504})


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------


class BundlerError(SmartKeysError):
    """Root of the bundler client's errors. ``method`` is the JSON-RPC method that failed."""

    method: str | None = None


class BundlerConnectionError(BundlerError, NetworkError):
    """The bundler could not be reached, or kept answering with HTTP errors, rate limits or broken answers.

    A :class:`~smartkeys.errors.NetworkError` too (CLI exit code 4); ``hint`` says what to do.
    """

    def __init__(self, message: str, *, method: str | None = None, status: int | None = None,
                 hint: str | None = None) -> None:
        self.method = method
        self.status = status
        self.endpoint = None
        self.hint = hint or ("the bundler is rate limiting: wait and run again" if status == 429 else
                             "check that the bundler is running and reachable (--bundler-url), then run again")
        SmartKeysError.__init__(self, message if "fix:" in message else f"{message}; fix: {self.hint}")


class BundlerTimeoutError(BundlerConnectionError, TimeoutError):
    """No answer within the timeout (a request, or :meth:`BundlerClient.wait_for_receipt`)."""


class BundlerRPCError(BundlerError):
    """A JSON-RPC error that is not about the user operation itself (bad params, unknown method...)."""

    def __init__(self, code: int | None, message: str, *, method: str | None = None, data: Any = None) -> None:
        self.method = method
        self.code = code
        self.message = message
        self.rpc_data = data
        super().__init__(f"bundler {method or 'request'} failed: JSON-RPC error {code}: {message}")


class BundlerUserOperationError(UserOperationError, BundlerError):
    """The bundler refused (or failed to simulate) the user operation: ``code`` is the AAxx code if any,
    ``rpc_code`` the JSON-RPC code (ERC-7769: -32500 validation, -32501 paymaster, -32502 opcode,
    -32503 time range, -32507 signature, -32521 execution reverted...), ``inner`` the decoded revert."""

    def __init__(
        self, message: str, *, rpc_code: int | None, method: str | None, inner: SmartKeysError | None = None,
        data: Any = None,
    ) -> None:
        self.rpc_code = rpc_code
        self.method = method
        self.rpc_data = data
        raw = data if isinstance(data, bytes) else None
        super().__init__(message, inner=inner, data=raw)


class BundlerEntryPointError(BundlerError):
    """``eth_supportedEntryPoints`` does not list the EntryPoint the operation is for (nothing was signed)."""

    def __init__(self, entry_point: str, supported: list[str], *, url: str) -> None:
        self.method = "eth_supportedEntryPoints"
        self.entry_point = entry_point
        self.supported = list(supported)
        self.url = url
        super().__init__(
            f"the bundler at {url} does not serve EntryPoint {entry_point} (it lists "
            f"{', '.join(supported) or 'none'}); nothing was signed; fix: use a bundler for EntryPoint v0.8 "
            f"({entry_point}) on this chain"
        )


class BundlerHTTPError(Exception):
    """Raised by a transport for a non-2xx HTTP answer (not a SmartKeysError: the client maps it)."""

    def __init__(self, status: int, body: str = "", retry_after: float | None = None) -> None:
        self.status = status
        self.body = body
        self.retry_after = retry_after
        super().__init__(f"HTTP {status}: {body[:200]}")


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------


def _qty(data: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = data.get(key)
    if value is None:
        if default is not None:
            return default
        raise InvalidInputError(key, None, f"the {key} field in the bundler's answer", "check the bundler's version")
    return parse_quantity(value, key)


def _hash(value: Any, name: str) -> bytes:
    return checked_bytes(value, name, length=32)


@dataclass(frozen=True)
class GasEstimate:
    """``eth_estimateUserOperationGas``: gas limits (the paymaster ones are 0 without a paymaster)."""

    pre_verification_gas: int
    verification_gas_limit: int
    call_gas_limit: int
    paymaster_verification_gas_limit: int = 0
    paymaster_post_op_gas_limit: int = 0

    @classmethod
    def from_rpc(cls, data: Mapping[str, Any]) -> GasEstimate:
        return cls(
            _qty(data, "preVerificationGas"), _qty(data, "verificationGasLimit"), _qty(data, "callGasLimit"),
            _qty(data, "paymasterVerificationGasLimit", 0), _qty(data, "paymasterPostOpGasLimit", 0),
        )

    def apply(self, op: PackedUserOperation) -> PackedUserOperation:
        """``op`` with these limits (paymaster limits only if the op has a paymaster)."""
        changes: dict[str, int] = {
            "pre_verification_gas": self.pre_verification_gas,
            "verification_gas_limit": self.verification_gas_limit,
            "call_gas_limit": self.call_gas_limit,
        }
        if op.paymaster is not None:
            changes["paymaster_verification_gas_limit"] = self.paymaster_verification_gas_limit
            changes["paymaster_post_op_gas_limit"] = self.paymaster_post_op_gas_limit
        return op.replace(**changes)


@dataclass(frozen=True)
class UserOperationReceipt:
    """``eth_getUserOperationReceipt``: what happened to a mined user operation."""

    user_op_hash: bytes
    entry_point: str
    sender: str
    nonce: int
    paymaster: str | None
    actual_gas_cost: int
    actual_gas_used: int
    success: bool
    reason: str | None
    transaction_hash: bytes | None
    block_number: int | None
    logs: tuple[Any, ...] = ()
    receipt: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_rpc(cls, data: Mapping[str, Any]) -> UserOperationReceipt:
        receipt = data.get("receipt") or {}
        paymaster = data.get("paymaster")
        if paymaster is not None and int(paymaster, 16) == 0:
            paymaster = None
        success = data.get("success")
        if isinstance(success, str):
            success = success.lower() in ("true", "0x1", "1")
        tx_hash = receipt.get("transactionHash")
        block = receipt.get("blockNumber")
        return cls(
            user_op_hash=_hash(data.get("userOpHash"), "userOpHash"),
            entry_point=checked_address(data.get("entryPoint"), "entryPoint"),
            sender=checked_address(data.get("sender"), "sender"),
            nonce=_qty(data, "nonce"),
            paymaster=None if paymaster is None else checked_address(paymaster, "paymaster"),
            actual_gas_cost=_qty(data, "actualGasCost"),
            actual_gas_used=_qty(data, "actualGasUsed"),
            success=bool(success),
            reason=data.get("reason") or None,
            transaction_hash=None if tx_hash is None else _hash(tx_hash, "receipt.transactionHash"),
            block_number=None if block is None else parse_quantity(block, "receipt.blockNumber"),
            logs=tuple(data.get("logs") or ()),
            receipt=dict(receipt),
        )

    def revert(self) -> SmartKeysError | None:
        """The decoded revert reason of a failed operation (None on success or without data)."""
        if self.success or not self.reason:
            return None
        try:
            return decode_revert(self.reason)
        except InvalidInputError:  # a text reason, not revert data
            return UserOperationError(self.reason)


@dataclass(frozen=True)
class UserOperationByHash:
    """``eth_getUserOperationByHash``: the operation and where it was included (None fields if pending)."""

    user_operation: PackedUserOperation
    entry_point: str
    block_number: int | None
    block_hash: bytes | None
    transaction_hash: bytes | None

    @classmethod
    def from_rpc(cls, data: Mapping[str, Any]) -> UserOperationByHash:
        def opt_hash(key: str) -> bytes | None:
            return None if data.get(key) is None else _hash(data[key], key)

        return cls(
            user_operation=PackedUserOperation.from_rpc(data["userOperation"]),
            entry_point=checked_address(data.get("entryPoint"), "entryPoint"),
            block_number=None if data.get("blockNumber") is None else parse_quantity(data["blockNumber"], "blockNumber"),
            block_hash=opt_hash("blockHash"),
            transaction_hash=opt_hash("transactionHash"),
        )


# --------------------------------------------------------------------------------------------
# transport
# --------------------------------------------------------------------------------------------


_MAX_RESPONSE_DEPTH = 64  # JSON-RPC answers nest a few levels; json's C scanner overflows the stack on 70,000
_MAX_RESPONSE_BYTES = 16 * 1024 * 1024  # a receipt with many logs is well under a MiB


def _loads(text: str | bytes) -> Any:
    """An answer from the network through the one bounded parser (size and nesting checked before parsing);
    ``safe_files.JSONBoundsError`` (a ``ValueError``) otherwise."""
    from smartkeys.safe_files import loads_bounded

    return loads_bounded(text, max_depth=_MAX_RESPONSE_DEPTH, max_bytes=_MAX_RESPONSE_BYTES)


_GARBAGE_HINT = "the bundler (or a proxy in front of it) answers garbage: check --bundler-url, then run again"


def _wrong_type(method: str, result: Any, expected: str) -> BundlerConnectionError:
    """A JSON-RPC answer whose result has the wrong shape: a network error (exit 4), never a TypeError."""
    shown = "null" if result is None else type(result).__name__
    return BundlerConnectionError(f"bundler {method}: the result is {shown}, not {expected}", method=method,
                                  hint=_GARBAGE_HINT)


def _read_within(response: Any, seconds: float, limit: int) -> bytes:
    """The whole body of an ``http.client`` response, read in pieces as they arrive, within ``seconds`` of
    wall time for the whole answer (a socket timeout bounds one read only: a server trickling a byte at a
    time never trips it). ``TimeoutError`` past the time, ``ValueError`` past ``limit`` bytes."""
    end = time.monotonic() + seconds
    sock = getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)  # best effort
    chunks: list[bytes] = []
    total = 0
    while True:
        left = end - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"the bundler's answer took more than {seconds:.1f} s ({total} bytes so far)")
        if sock is not None:
            sock.settimeout(max(0.05, left))
        chunk = response.read1(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise ValueError(f"the bundler's answer is more than {limit} bytes")


class UrllibTransport:
    """POST the JSON-RPC request with ``urllib`` (no dependency). Raises :class:`BundlerHTTPError` for
    non-2xx answers, ``TimeoutError`` for timeouts and ``OSError`` for connection failures."""

    def __init__(self, url: str, *, timeout: float = 10, headers: Mapping[str, str] | None = None) -> None:
        self.url = url
        self.timeout = timeout
        self.headers = {"Content-Type": "application/json", "Accept": "application/json", **(headers or {})}

    def __repr__(self) -> str:
        return f"UrllibTransport({self.url.split('?')[0]!r})"  # never show query-string API keys

    def __call__(self, payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload).encode()
        request = urllib.request.Request(self.url, data=body, headers=self.headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = _read_within(response, self.timeout, _MAX_RESPONSE_BYTES)
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace") if exc.fp is not None else ""
            retry_after = _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
            # JSON-RPC servers sometimes send the error object with an HTTP error status
            if exc.code not in _RETRY_HTTP:
                try:
                    decoded = _loads(text)
                    if isinstance(decoded, dict) and "error" in decoded:
                        return decoded
                except ValueError:
                    pass
            raise BundlerHTTPError(exc.code, text, retry_after) from None
        except TimeoutError as exc:
            raise TimeoutError(f"no answer from the bundler within {self.timeout} s") from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, (socket.timeout, TimeoutError)):
                raise TimeoutError(f"no answer from the bundler within {self.timeout} s") from exc
            raise ConnectionError(f"cannot reach the bundler: {exc.reason}") from exc
        except http.client.HTTPException as exc:  # IncompleteRead, BadStatusLine: the answer was cut
            raise ConnectionError(f"the bundler's answer was cut short ({type(exc).__name__})") from exc
        try:
            return _loads(raw)  # size- and depth-bounded (safe_files)
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError: a garbled answer
            raise ConnectionError(f"the bundler sent a broken answer ({type(exc).__name__}, {len(raw)} bytes)") from exc


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------
# client
# --------------------------------------------------------------------------------------------


_HEX_BLOB = re.compile(r"0x[0-9a-fA-F]{8}(?:[0-9a-fA-F]{2})*\b")


def _decode_data(data: Any) -> SmartKeysError | None:
    """Revert data from an RPC error's ``data`` (hex string, or an object carrying one), decoded."""
    candidates: list[Any] = [data]
    if isinstance(data, Mapping):
        candidates = [data.get(k) for k in ("revertData", "data", "reason", "inner")]
    for value in candidates:
        if isinstance(value, str) and value.startswith("0x") and len(value) >= 10:
            try:
                return decode_revert(value)
            except InvalidInputError:
                continue
    return None


def _wire_op(op: PackedUserOperation) -> dict[str, Any]:
    """``op.to_rpc()`` as bundlers take it: an EIP-7702 op names its factory by the short marker ``"0x7702"``.

    Alto 0.0.20 refuses the 20-byte padded form ("factory that is neither null or 0x7702"); both forms
    hash the same (the EntryPoint reads the marker from the first 20 bytes, zero-padded).
    """
    out = op.to_rpc()
    if op.is_eip7702:
        out["factory"] = "0x7702"
    return out


@runtime_checkable
class Bundler(Protocol):
    """How a user operation leaves the process: the one type that ``bundler=`` takes.

    ``via`` is what the outbox records for the intent (``"self_bundled"`` or ``"bundler"``), which decides how
    :func:`smartkeys.outbox.settle` re-sends it. The two hooks run one owner operation or one session use
    through this way out, with its exactly-once bookkeeping (:mod:`smartkeys.outbox`); they are called by
    :class:`~smartkeys.account.Owner` and :class:`~smartkeys.account.SessionAgent`, not by users.
    Implementations: :class:`SelfBundler`, :class:`BundlerClient`.
    """

    via: str

    def _submit_owner_op(self, owner: Owner, calls: Any) -> UserOpResult: ...

    def _submit_session_op(self, agent: SessionAgent, calls: Any, expected_outflows: Any, raise_on_failure: bool,
                           guard: Any) -> AgentReceipt: ...


class SelfBundler:
    """Self-bundling: ``account`` (any funded eth-account ``BaseAccount``) signs and sends
    ``EntryPoint.handleOps([op], beneficiary)`` itself and pays its gas; the account refunds it through the
    EntryPoint (prefund). ``beneficiary`` (default: the account) receives that refund.

    The bundle is simulated (estimated) before it is signed, so a refused operation raises its typed error and
    nothing is sent; the signed bundle transaction is recorded in the outbox before it leaves the process.

    >>> # agent.transfer(token, to, amount, bundler=SelfBundler(relayer))
    """

    via = "self_bundled"

    def __init__(self, account: BaseAccount, *, beneficiary: str | None = None) -> None:
        from smartkeys.signers import as_signer

        self.account = as_signer(account, "bundler")
        self.beneficiary = checked_address(beneficiary, "beneficiary") if beneficiary is not None else None

    def __repr__(self) -> str:
        return f"SelfBundler(account={self.account.address})"

    @property
    def address(self) -> str:
        """The address that sends (and pays for) the bundles."""
        return self.account.address

    def handle_ops(self, entry_point: Any, ops: Any, *, on_signed: Any = None) -> list[UserOpResult]:
        """``entry_point.handle_ops(ops, self.account)`` (:meth:`smartkeys.entrypoint.EntryPoint.handle_ops`)."""
        return entry_point.handle_ops(ops, self.account, beneficiary=self.beneficiary, on_signed=on_signed)

    def _submit_owner_op(self, owner: Owner, calls: Any) -> UserOpResult:
        return owner._self_bundled(calls, self)

    def _submit_session_op(self, agent: SessionAgent, calls: Any, expected_outflows: Any, raise_on_failure: bool,
                           guard: Any) -> AgentReceipt:
        return agent._self_bundled(calls, self, expected_outflows, raise_on_failure, guard)


def as_bundler(value: Any, field: str = "bundler") -> Bundler:
    """``value`` as a :class:`Bundler`: a :class:`SelfBundler` or :class:`BundlerClient` as is; a bare
    eth-account ``BaseAccount`` (or ``SessionKey``) as ``SelfBundler(value)`` (the documented shorthand);
    anything else raises :class:`~smartkeys.errors.InvalidInputError` naming ``field``."""
    if isinstance(value, Bundler):
        return value
    from eth_account.signers.base import BaseAccount

    from smartkeys.keystore import SessionKey

    if isinstance(value, SessionKey):
        value = value.account
    if isinstance(value, BaseAccount):
        return SelfBundler(value)
    raise InvalidInputError(field, type(value).__name__,
                            "a Bundler: SelfBundler(funded_account) or BundlerClient(url) (a bare funded account "
                            "is taken as SelfBundler(account))",
                            "pass bundler=SelfBundler(relayer) or bundler=BundlerClient(url), or use via='direct'")


class BundlerClient:
    """ERC-4337 bundler JSON-RPC client with retries and typed errors. Network helpers take it first.

    A :class:`Bundler`: ``bundler=BundlerClient(url)`` sends operations through the service (``via="bundler"``).
    """

    via = "bundler"

    def _submit_owner_op(self, owner: Owner, calls: Any) -> UserOpResult:
        return owner._via_bundler(calls, self)

    def _submit_session_op(self, agent: SessionAgent, calls: Any, expected_outflows: Any, raise_on_failure: bool,
                           guard: Any) -> AgentReceipt:
        return agent._via_bundler(calls, self, expected_outflows, raise_on_failure, guard)

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10,
        max_retries: int = 5,
        backoff: float = 0.25,
        max_backoff: float = 8.0,
        transport: Transport | None = None,
        expected_chain_id: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        poll_interval: float = 0.5,
    ) -> None:
        if max_retries < 0:
            raise InvalidInputError("max_retries", max_retries, "a non-negative integer", "use 0 to disable retries")
        self.url = url
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.transport: Transport = transport or UrllibTransport(url, timeout=timeout)
        self.expected_chain_id = expected_chain_id
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._ids = itertools.count(1)
        self._chain_checked = expected_chain_id is None
        self._compatible: set[tuple[int, str]] = set()
        self.poll_interval = poll_interval  # default of wait_for_receipt (a local bundler answers in ~0.1 s)

    def __repr__(self) -> str:
        return f"BundlerClient({self.url.split('?')[0]!r})"

    # -- plumbing ------------------------------------------------------------------------------

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_backoff)
        return min(self.max_backoff, self.backoff * 2**attempt) * (0.5 + 0.5 * self._rng.random())

    def request(self, method: str, params: list[Any]) -> Any:
        """One JSON-RPC call with retries; returns ``result`` or raises a :class:`BundlerError`."""
        from smartkeys.rpc import remaining

        attempt = 0
        while True:
            payload = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
            retry_after: float | None = None
            left = remaining()
            if left is not None and left <= 0:
                raise BundlerTimeoutError(f"deadline passed before bundler {method}", method=method,
                                          hint="the bundler is too slow: raise --timeout, or check it")
            if isinstance(self.transport, UrllibTransport):
                self.transport.timeout = self.timeout if left is None else max(0.05, min(self.timeout, left))
            try:
                response = self.transport(payload)
            except BundlerHTTPError as exc:
                if exc.status not in _RETRY_HTTP or attempt >= self.max_retries:
                    raise BundlerConnectionError(
                        f"bundler {method} failed: HTTP {exc.status}"
                        + (f" after {attempt + 1} attempts" if attempt else "")
                        + ("; fix: slow down or raise max_retries" if exc.status == 429 else ""),
                        method=method, status=exc.status,
                    ) from None
                retry_after = exc.retry_after
            except TimeoutError as exc:
                if attempt >= self.max_retries:
                    raise BundlerTimeoutError(
                        f"bundler {method} timed out after {attempt + 1} attempt(s) of {self.timeout} s; "
                        "fix: check the bundler URL or raise timeout",
                        method=method,
                    ) from exc
            except OSError as exc:  # ConnectionError, refused, reset, DNS
                if attempt >= self.max_retries:
                    raise BundlerConnectionError(
                        f"cannot reach the bundler for {method} after {attempt + 1} attempt(s): {exc}",
                        method=method,
                    ) from exc
            except ValueError as exc:  # not JSON, nested deeper than _MAX_RESPONSE_DEPTH, or too large
                raise BundlerConnectionError(f"bundler {method}: the answer is not JSON-RPC ({str(exc)[:120]})",
                                             method=method, hint=_GARBAGE_HINT) from None
            else:
                malformed = not isinstance(response, Mapping) or ("error" not in response and "result" not in response) \
                    or not isinstance(response.get("error"), (Mapping, type(None)))
                if malformed:
                    if attempt >= self.max_retries:
                        raise BundlerConnectionError(
                            f"bundler {method}: not a JSON-RPC answer: {str(response)[:80]}", method=method,
                            hint=_GARBAGE_HINT)
                else:
                    error = response.get("error")
                    if error is None:
                        return response["result"]
                    if not self._is_rate_limit(error) or attempt >= self.max_retries:
                        raise self._error(method, error)
            delay = self._delay(attempt, retry_after)
            left = remaining()
            if left is not None and delay >= left:
                raise BundlerTimeoutError(f"deadline passed while retrying bundler {method}", method=method,
                                          hint="the bundler is failing or slow: raise --timeout, or check it")
            self._sleep(delay)
            attempt += 1

    @staticmethod
    def _is_rate_limit(error: Mapping[str, Any]) -> bool:
        code = error.get("code")
        message = str(error.get("message", "")).lower()
        return code in RATE_LIMIT_CODES or (code == -32603 and "rate" in message)

    @staticmethod
    def _error(method: str, error: Any) -> BundlerError:
        if not isinstance(error, Mapping):
            return BundlerRPCError(None, str(error), method=method)
        code = error.get("code")
        message = str(error.get("message", ""))
        data = error.get("data")
        inner = _decode_data(data)
        if inner is None or isinstance(inner, UnknownRevertError):
            # Alto puts the revert data in the message: "UserOperation reverted during simulation with reason: 0x..."
            from_message = _decode_data(_HEX_BLOB.findall(message)[-1]) if _HEX_BLOB.search(message) else None
            if from_message is not None and not isinstance(from_message, UnknownRevertError):
                inner = from_message
        if isinstance(inner, UnknownRevertError) and not inner.data:
            inner = None
        aa = parse_aa_code(message)
        if isinstance(inner, FailedOp):  # the EntryPoint's own revert: take its code and inner error
            aa = aa or inner.code
            message = message or inner.reason
            inner = inner.inner or None
        user_op_codes = isinstance(code, int) and (-32599 <= code <= -32500)
        if aa is not None or user_op_codes or inner is not None:
            return BundlerUserOperationError(message, rpc_code=code, method=method, inner=inner, data=data)
        return BundlerRPCError(code, message, method=method, data=data)

    def _check_chain(self) -> None:
        if not self._chain_checked:
            actual = self.chain_id()
            if actual != self.expected_chain_id:
                raise ChainMismatchError(expected=int(self.expected_chain_id or 0), actual=actual, source="the bundler")
            self._chain_checked = True

    def check_compatible(self, chain_id: int, entry_point: str = ENTRY_POINT_V08) -> None:
        """Check, before anything is signed for this bundler, that it serves ``chain_id`` (``eth_chainId``)
        and ``entry_point`` (``eth_supportedEntryPoints``); remembered once it passed.

        ``chain_id`` is the node's (the chain the operation is signed for). Raises
        :class:`~smartkeys.errors.ChainMismatchError` (``source`` names the bundler) or
        :class:`BundlerEntryPointError`. A bundler on another chain would accept, estimate and even take the
        operation, and the only symptom would be a receipt that never comes.
        """
        entry_point = checked_address(entry_point, "entry_point")
        if (int(chain_id), entry_point) in self._compatible:
            return
        if self.expected_chain_id is not None and int(self.expected_chain_id) != int(chain_id):
            raise ChainMismatchError(expected=int(self.expected_chain_id), actual=int(chain_id),
                                     source="the node (the bundler client was built for another chain)")
        actual = self.chain_id()
        if actual != int(chain_id):
            raise ChainMismatchError(expected=int(chain_id), actual=actual,
                                     source=f"the bundler at {self.url.split('?')[0]} (the node serves chain {chain_id})")
        supported = self.supported_entry_points()
        if entry_point not in supported:
            raise BundlerEntryPointError(entry_point, supported, url=self.url.split("?")[0])
        self._compatible.add((int(chain_id), entry_point))
        self._chain_checked = True

    # -- methods -------------------------------------------------------------------------------

    def supported_entry_points(self) -> list[str]:
        """``eth_supportedEntryPoints``, checksummed. A result that is not a list of addresses raises
        :class:`BundlerConnectionError` (a network error: the bundler answers garbage)."""
        result = self.request("eth_supportedEntryPoints", [])
        try:
            if not isinstance(result, list):
                raise TypeError(type(result).__name__)
            return [to_checksum_address(a) for a in result]
        except (TypeError, ValueError):
            raise _wrong_type("eth_supportedEntryPoints", result, "a list of addresses") from None

    def chain_id(self) -> int:
        """``eth_chainId``. A result that is not a quantity raises :class:`BundlerConnectionError`."""
        result = self.request("eth_chainId", [])
        if not isinstance(result, str):
            raise _wrong_type("eth_chainId", result, "a hex quantity")
        return parse_quantity(result, "chainId")

    def estimate_user_operation_gas(self, op: PackedUserOperation, entry_point: str = ENTRY_POINT_V08) -> GasEstimate:
        """``eth_estimateUserOperationGas`` (sign with a dummy signature first, e.g. ``DUMMY_SIGNATURE``)."""
        self._check_chain()
        result = self.request("eth_estimateUserOperationGas", [_wire_op(op), checked_address(entry_point, "entry_point")])
        if not isinstance(result, Mapping):
            raise _wrong_type("eth_estimateUserOperationGas", result, "an object of gas limits")
        return GasEstimate.from_rpc(result)

    def send_user_operation(self, op: PackedUserOperation, entry_point: str = ENTRY_POINT_V08) -> bytes:
        """``eth_sendUserOperation``; returns the userOpHash. The op must be signed."""
        if not op.signature:
            raise InvalidInputError("signature", op.signature, "a signed user operation", "sign it with sign_user_op")
        self._check_chain()
        result = self.request("eth_sendUserOperation", [_wire_op(op), checked_address(entry_point, "entry_point")])
        return _hash(result, "userOpHash")

    def get_user_operation_receipt(self, user_op_hash: bytes | str) -> UserOperationReceipt | None:
        """``eth_getUserOperationReceipt``: None while the op is not mined."""
        result = self.request("eth_getUserOperationReceipt", ["0x" + _hash(user_op_hash, "user_op_hash").hex()])
        if result is not None and not isinstance(result, Mapping):
            raise _wrong_type("eth_getUserOperationReceipt", result, "a receipt object or null")
        return None if result is None else UserOperationReceipt.from_rpc(result)

    def get_user_operation_by_hash(self, user_op_hash: bytes | str) -> UserOperationByHash | None:
        """``eth_getUserOperationByHash``: None if the bundler does not know the op."""
        result = self.request("eth_getUserOperationByHash", ["0x" + _hash(user_op_hash, "user_op_hash").hex()])
        if result is not None and not isinstance(result, Mapping):
            raise _wrong_type("eth_getUserOperationByHash", result, "an object or null")
        return None if result is None else UserOperationByHash.from_rpc(result)

    def wait_for_receipt(
        self, user_op_hash: bytes | str, timeout: float = 60, *, poll_interval: float | None = None
    ) -> UserOperationReceipt:
        """Poll ``eth_getUserOperationReceipt`` until the op is mined; :class:`BundlerTimeoutError` after ``timeout`` s.

        ``poll_interval`` defaults to the client's ``poll_interval``.
        """
        digest = _hash(user_op_hash, "user_op_hash")
        if poll_interval is None:
            poll_interval = self.poll_interval
        from smartkeys.rpc import remaining as deadline_remaining

        left = deadline_remaining()
        deadline = time.monotonic() + (timeout if left is None else max(0.0, min(timeout, left)))
        while True:
            receipt = self.get_user_operation_receipt(digest)
            if receipt is not None:
                return receipt
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BundlerTimeoutError(
                    f"user operation 0x{digest.hex()} not mined within {timeout} s; fix: check it with "
                    "get_user_operation_by_hash, or wait longer",
                    method="eth_getUserOperationReceipt",
                )
            self._sleep(min(poll_interval, remaining))
