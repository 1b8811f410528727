"""A node connection that turns every network fault into a typed error, retries only what is safe,
honours ``Retry-After``, and keeps to an overall deadline.

- :func:`connect` returns a ``Web3`` over :class:`ResilientHTTPProvider`.
- :func:`deadline` (a context manager) bounds everything the SDK does inside it, in seconds of wall
  time: every request's timeout is cut to what is left, and when nothing is left
  :class:`~smartkeys.errors.DeadlineExceededError` is raised. The CLI wraps each command in one
  (``--timeout``). :func:`remaining` tells how much is left (None: no deadline).

What is retried (capped, jittered exponential backoff; ``Retry-After`` honoured up to the deadline):
reads, and ``eth_sendRawTransaction``, whose payload is one signed transaction: sending it again
cannot make it land twice (its nonce allows one inclusion, its hash is known before it is sent).
Nothing else that changes state is retried here.

Errors (all :class:`~smartkeys.errors.NetworkError`, CLI exit code 4):

- connection refused / reset, request timeout -> :class:`~smartkeys.errors.NodeUnavailableError`
- HTTP 429 (or JSON-RPC -32005) after the retries -> :class:`~smartkeys.errors.RateLimitedError`
- an answer that is not JSON-RPC (cut, garbled, nested deeper than 64 levels, larger than 64 MiB, an error
  that is not an error object, a read's result of the wrong type) -> :class:`~smartkeys.errors.MalformedResponseError`
- an answer not complete within the request timeout or the deadline (a node trickling it byte by byte): the
  whole answer is bounded, not each read -> :class:`~smartkeys.errors.NodeUnavailableError` /
  :class:`~smartkeys.errors.DeadlineExceededError`
- other HTTP errors -> :class:`~smartkeys.errors.NetworkError`
- the deadline passed -> :class:`~smartkeys.errors.DeadlineExceededError`

Written by hand on top of web3's ``HTTPProvider`` (not its ``exception_retry_configuration``) because that
one neither reads ``Retry-After`` nor knows a deadline, and lets ``JSONDecodeError``/``HTTPError`` out untyped.
"""

from __future__ import annotations

import contextlib
import contextvars
import random
import re
import time
from collections.abc import Iterator
from typing import Any, cast

import requests
import urllib3
from eth_typing import URI
from web3 import HTTPProvider, Web3

from smartkeys.errors import (
    DeadlineExceededError,
    MalformedResponseError,
    NetworkError,
    NodeUnavailableError,
    RateLimitedError,
)

__all__ = ["ResilientHTTPProvider", "SAFE_TO_RETRY", "connect", "deadline", "read_whole_answer", "remaining",
           "retry_after_seconds"]

_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("smartkeys_deadline", default=None)

#: Methods retried after a fault: reads, and the broadcast of an already signed transaction (same hash).
SAFE_TO_RETRY = frozenset({
    "eth_chainId", "eth_blockNumber", "eth_getBlockByNumber", "eth_getBlockByHash", "eth_call", "eth_estimateGas",
    "eth_getBalance", "eth_getCode", "eth_getStorageAt", "eth_getTransactionCount", "eth_getTransactionReceipt",
    "eth_getTransactionByHash", "eth_getLogs", "eth_gasPrice", "eth_maxPriorityFeePerGas", "eth_feeHistory",
    "net_version", "web3_clientVersion", "eth_accounts", "eth_sendRawTransaction",
})
_RETRY_STATUS = frozenset({429, 502, 503, 504})
_ALREADY_KNOWN = "already known"  # geth/anvil: this very transaction is already in the pool


@contextlib.contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Bound everything inside to ``seconds`` of wall time (None: no bound). Nested deadlines keep the earlier."""
    if seconds is None:
        yield
        return
    end = time.monotonic() + float(seconds)
    outer = _DEADLINE.get()
    token = _DEADLINE.set(end if outer is None else min(outer, end))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def remaining() -> float | None:
    """Seconds left before the current deadline (may be <= 0), or None without one."""
    end = _DEADLINE.get()
    return None if end is None else end - time.monotonic()


def check_deadline(what: str, *, endpoint: str | None = None, method: str | None = None) -> None:
    """Raise :class:`DeadlineExceededError` if the current deadline has passed."""
    left = remaining()
    if left is not None and left <= 0:
        raise DeadlineExceededError(f"deadline passed while {what}", endpoint=endpoint, method=method)


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds (delta-seconds form; an HTTP date is read too), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def bounded_timeout(timeout: float, what: str, **kw: Any) -> float:
    """``timeout`` cut to what is left of the deadline (raises once it has passed)."""
    left = remaining()
    if left is None:
        return timeout
    if left <= 0:
        raise DeadlineExceededError(f"deadline passed while {what}", **kw)
    return max(0.05, min(timeout, left))


class ResilientHTTPProvider(HTTPProvider):
    """``HTTPProvider`` whose faults are typed (see the module docstring), with safe retries and a deadline.

    ``timeout`` is the per-request timeout in seconds; ``retries`` how many times a safe request is
    tried again; ``backoff`` / ``max_backoff`` the delay in seconds (``backoff * 2**attempt``, jittered).
    A ``Retry-After`` is waited for as asked, unless it exceeds ``max_retry_after`` seconds or the deadline:
    then :class:`~smartkeys.errors.RateLimitedError` is raised at once, carrying it.
    """

    def __init__(self, endpoint_uri: str, *, timeout: float = 30, retries: int = 4, backoff: float = 0.2,
                 max_backoff: float = 5.0, max_retry_after: float = 30.0, rng: random.Random | None = None,
                 **kwargs: Any) -> None:
        kwargs.setdefault("request_kwargs", {})
        kwargs["request_kwargs"] = {**kwargs["request_kwargs"], "timeout": timeout}
        super().__init__(endpoint_uri, exception_retry_configuration=None, **kwargs)
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self._rng = rng or random.Random()
        self.label = str(endpoint_uri).split("?")[0]

    def make_request(self, method: Any, params: Any) -> Any:
        attempt = 0
        while True:
            kw: dict[str, Any] = {"endpoint": self.label, "method": str(method)}
            timeout = bounded_timeout(self.timeout, f"calling {method} on {self.label}", **kw)
            retry_after: float | None = None
            try:
                request_data = self.encode_rpc_request(method, params)
                raw = self._post(request_data, timeout, method)
                response = self._decode(raw, method)
                error = response.get("error") if isinstance(response, dict) else None
                if isinstance(error, dict) and error.get("code") == -32005:
                    failure: NetworkError = RateLimitedError(
                        f"{self.label} rate-limited {method}: {error.get('message', '')}", **kw)
                elif attempt and isinstance(error, dict) and str(method) == "eth_sendRawTransaction" \
                        and _ALREADY_KNOWN in str(error.get("message", "")).lower():
                    # our first attempt reached the node and only its answer was lost: answer as it would have
                    from eth_utils import keccak

                    raw = params[0] if isinstance(params[0], (bytes, bytearray)) else bytes.fromhex(
                        str(params[0]).removeprefix("0x"))
                    return {"jsonrpc": "2.0", "id": response.get("id"), "result": "0x" + keccak(raw).hex()}
                else:
                    return _checked_result(response, str(method), self.label)
            except _WrongResultType:
                raise  # a well-formed answer of the wrong shape: asking again gets the same
            except requests.HTTPError as exc:
                status = exc.response.status_code if exc.response is not None else None
                if status == 429 and exc.response is not None:
                    retry_after = retry_after_seconds(exc.response.headers.get("Retry-After"))
                    failure = RateLimitedError(
                        f"{self.label} answered HTTP 429 (too many requests) to {method}"
                        + (f", Retry-After {retry_after:g} s" if retry_after is not None else ""),
                        retry_after=retry_after, **kw)
                else:
                    failure = NetworkError(f"{self.label} answered HTTP {status} to {method}", **kw)
                    if status not in _RETRY_STATUS:
                        raise failure from None
            except requests.Timeout:
                failure = NodeUnavailableError(
                    f"no complete answer from the RPC node at {self.label} to {method} within {timeout:.1f} s", **kw)
            except (requests.ConnectionError, ConnectionError) as exc:
                failure = NodeUnavailableError(
                    f"cannot reach the RPC node at {self.label} ({method}: {_reason(exc)})", **kw)
            except MalformedResponseError as exc:
                failure = exc
            except requests.RequestException as exc:  # ChunkedEncodingError etc.: the answer was cut
                failure = MalformedResponseError(
                    f"{self.label} cut its answer to {method} short ({type(exc).__name__})", **kw)
            if str(method) not in SAFE_TO_RETRY or attempt >= self.retries:
                raise failure
            if retry_after is not None and retry_after > self.max_retry_after:
                raise failure  # asked to come back much later: say so now (RateLimitedError.retry_after)
            delay = self._delay(attempt, retry_after)
            left = remaining()
            if left is not None and delay >= left:
                if isinstance(failure, RateLimitedError):
                    raise failure
                raise DeadlineExceededError(f"deadline passed while retrying {method} ({failure})", **kw)
            time.sleep(delay)
            attempt += 1

    def _post(self, data: bytes, timeout: float, method: Any) -> bytes:
        """POST ``data`` and read the whole answer within ``timeout`` seconds of wall time.

        requests' ``timeout`` bounds each socket read only, so a node trickling one byte at a time would never
        trip it (nor the deadline, which only shortens it): the body is read in pieces as they arrive and the
        clock is checked between them (``requests.ReadTimeout`` past it), and at most :data:`MAX_ANSWER_BYTES`
        are taken (:class:`MalformedResponseError` beyond)."""
        end = time.monotonic() + timeout
        kwargs = {**self.get_request_kwargs(), "timeout": timeout, "stream": True}
        with self._request_session_manager.get_response_from_post_request(
                cast(URI, self.endpoint_uri), data=data, **kwargs) as response:  # set from the required endpoint_uri
            response.raise_for_status()
            raw = read_whole_answer(response, end, MAX_ANSWER_BYTES)
        if raw is None:
            raise MalformedResponseError(f"{self.label} sent more than {MAX_ANSWER_BYTES} bytes in answer to {method}",
                                         endpoint=self.label, method=str(method))
        return raw

    def _decode(self, raw: bytes, method: Any) -> Any:
        from smartkeys.safe_files import loads_bounded

        try:  # size and nesting bounded before any parse: json recurses in C (see safe_files)
            response = loads_bounded(raw, max_depth=MAX_ANSWER_DEPTH, max_bytes=MAX_ANSWER_BYTES)
        except ValueError as exc:  # JSONBoundsError
            raise MalformedResponseError(
                f"{self.label} sent a broken answer to {method} ({str(exc)[:100]}; {len(raw)} bytes)",
                endpoint=self.label, method=str(method)) from None
        if not isinstance(response, dict) or ("result" not in response and "error" not in response):
            raise MalformedResponseError(f"{self.label} sent a non-JSON-RPC answer to {method}: {str(response)[:80]}",
                                         endpoint=self.label, method=str(method))
        error = response.get("error")
        if error is not None and not (isinstance(error, dict) and type(error.get("code")) is int
                                      and isinstance(error.get("message", ""), str)):
            raise MalformedResponseError(  # JSON-RPC 2.0 section 5.1: an object with an integer code and a message
                f"{self.label} answered {method} with an error that is not a JSON-RPC error object: {str(error)[:80]}",
                endpoint=self.label, method=str(method))
        return response

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        return min(self.max_backoff, self.backoff * 2**attempt) * (0.5 + 0.5 * self._rng.random())


def read_whole_answer(response: requests.Response, end: float, limit: int) -> bytes | None:
    """The body of a ``stream=True`` ``requests`` response, read in pieces as they arrive until
    ``time.monotonic()`` reaches ``end`` (then ``requests.ReadTimeout``: the bound is on the whole answer,
    where requests' own timeout bounds each read); None once more than ``limit`` bytes came. urllib3's
    faults are raised as the ``requests`` exceptions ``iter_content`` would raise."""
    body = response.raw
    sock = getattr(getattr(body, "connection", None), "sock", None)  # best effort: shorten each read too
    chunks: list[bytes] = []
    total = 0
    while True:
        left = end - time.monotonic()
        if left <= 0:
            raise requests.ReadTimeout(f"answer not complete in time ({total} bytes so far)")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.settimeout(max(0.05, left))
        try:
            chunk = body.read1(65536, decode_content=True)
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise requests.ReadTimeout(str(exc)) from None
        except urllib3.exceptions.DecodeError as exc:
            raise requests.exceptions.ContentDecodingError(str(exc)) from None
        except (urllib3.exceptions.ProtocolError, urllib3.exceptions.SSLError) as exc:
            raise requests.exceptions.ChunkedEncodingError(str(exc)) from None
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            return None


#: Largest answer read from a node (an ``eth_getLogs`` over a wide range is the largest a command asks for).
MAX_ANSWER_BYTES = 64 * 1024 * 1024
#: Deepest nesting accepted in an answer (a receipt with logs nests 3 levels; a trace a few more).
MAX_ANSWER_DEPTH = 64

_QUANTITY = re.compile(r"0x[0-9a-fA-F]{1,64}")
_DATA = re.compile(r"0x(?:[0-9a-fA-F]{2})*")
# What each read's result must be (Ethereum JSON-RPC spec, execution-apis): web3's formatters assume it and
# raise TypeError/ValueError on anything else. eth_sendRawTransaction is left to the send path's own checks.
_RESULT_SHAPES: dict[str, tuple[str, Any]] = {
    **{m: ("a hex quantity", lambda r: isinstance(r, str) and _QUANTITY.fullmatch(r) is not None) for m in (
        "eth_chainId", "eth_blockNumber", "eth_getBalance", "eth_getTransactionCount", "eth_gasPrice",
        "eth_maxPriorityFeePerGas", "eth_estimateGas")},
    **{m: ("hex data", lambda r: isinstance(r, str) and _DATA.fullmatch(r) is not None) for m in (
        "eth_getCode", "eth_call", "eth_getStorageAt")},
    **{m: ("an object or null", lambda r: r is None or isinstance(r, dict)) for m in (
        "eth_getBlockByNumber", "eth_getBlockByHash", "eth_getTransactionReceipt", "eth_getTransactionByHash")},
    **{m: ("a list", lambda r: isinstance(r, list)) for m in ("eth_getLogs", "eth_accounts")},
    "eth_feeHistory": ("an object", lambda r: isinstance(r, dict)),
    "net_version": ("text", lambda r: isinstance(r, str)),
    "web3_clientVersion": ("text", lambda r: isinstance(r, str)),
}


class _WrongResultType(MalformedResponseError):
    """A well-formed JSON-RPC answer whose result has the wrong type (not retried: it would come again)."""

    default_hint = ("the endpoint does not answer like an Ethereum node: check that --rpc-url / SMARTKEYS_RPC_URL "
                    "points at one (not a proxy or another service)")


def _checked_result(response: dict[str, Any], method: str, label: str) -> dict[str, Any]:
    """``response`` if its ``result`` has the shape ``method`` returns, else :class:`_WrongResultType`."""
    if "error" in response and response["error"] is not None:
        return response
    shape = _RESULT_SHAPES.get(method)
    if shape is not None and not shape[1](response.get("result")):
        result = response.get("result")
        shown = "null" if result is None else f"a JSON {type(result).__name__}"
        raise _WrongResultType(f"{label} answered {method} with {shown}, not {shape[0]}", endpoint=label,
                               method=method)
    return response


def _reason(exc: BaseException) -> str:
    text = str(exc)
    for needle in ("Connection refused", "Connection reset", "Remote end closed", "RemoteDisconnected",
                   "Connection aborted", "IncompleteRead", "Broken pipe"):
        if needle.lower() in text.lower():
            return needle.lower()
    return type(exc).__name__


def connect(url: str, *, timeout: float = 30, retries: int = 4) -> Web3:
    """A ``Web3`` on ``url`` through :class:`ResilientHTTPProvider` (see the module docstring)."""
    return Web3(ResilientHTTPProvider(url, timeout=timeout, retries=retries))
