"""One reader for ``eth_getLogs``: chunked, adapting to the provider's block-range limit, never from genesis.

Public providers refuse ``eth_getLogs`` over more than 500 to 10,000 blocks (or more than 10,000 results),
each in its own words. :func:`read_logs` asks for at most ``chunk`` blocks at a time; when a provider
refuses a range as too wide, it shrinks the chunk (to the limit the message names when it names one, else
by half) and asks again, and it remembers the limit for that provider. Any other error is raised as it is.
Written here rather than taken from a library: web3.py has no range-adapting log reader, and the wording of
each provider's refusal is what decides.

Where a scan starts: :func:`account_start_block` finds the first block at which the account's nonce was
non-zero, by binary search over ``eth_getTransactionCount`` (about 17 requests on a 100,000-block chain).
Logs of an EIP-7702 account come from its code, which a processed authorization sets, and every processed
authorization bumps the nonce: no log of the account can be older. A node that keeps no historical state
cannot answer this; then :class:`LogQueryError` asks for ``from_block`` (``--from-block``).

I/O functions take the ``Web3`` first.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from eth_utils import to_checksum_address

from smartkeys.errors import SmartKeysError

__all__ = [
    "DEFAULT_CHUNK",
    "LogQueryError",
    "account_start_block",
    "is_range_limit_error",
    "read_logs",
    "resolve_block",
]

#: Blocks per ``eth_getLogs`` until a provider says less (most public providers allow 500-10,000).
DEFAULT_CHUNK = 10_000

_RANGE_WORDS = re.compile(
    r"block range|range (is )?too (large|wide|big)|too (many|large|wide)|exceed|limited to|response size|"
    r"more than \d[\d,]* (results|logs|blocks)|max(imum)? (block )?range|range limit|query returned more",
    re.IGNORECASE,
)
_HINTED_RANGE = re.compile(r"\[\s*(0x[0-9a-fA-F]+)\s*,\s*(0x[0-9a-fA-F]+)\s*\]")  # Alchemy: "should work: [0x0, 0x1f3]"
_NUMBERS = re.compile(r"(?<![0-9a-fA-Fx])(\d{1,3}(?:,\d{3})+|\d+)(?![\d,kK])(?!\s*(?:results|logs))", re.IGNORECASE)


class LogQueryError(SmartKeysError):
    """Logs cannot be read as asked: ``from_block`` unknown (no historical state), or a provider keeps
    refusing even one block. ``field`` names what to set."""

    def __init__(self, message: str, *, field: str = "from_block") -> None:
        self.field = field
        super().__init__(message)


# Learned limits, per provider object (a Web3's provider), forgotten with it.
_LIMITS: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
_STARTS: dict[tuple[int, int, str], int] = {}
_GUARD = threading.Lock()


def _message(exc: BaseException) -> str:
    parts = [str(exc)]
    for arg in getattr(exc, "args", ()):
        if isinstance(arg, dict):
            parts.append(str(arg.get("message", "")))
    rpc = getattr(exc, "rpc_response", None)
    if isinstance(rpc, dict) and isinstance(rpc.get("error"), dict):
        parts.append(str(rpc["error"].get("message", "")))
    return " ".join(parts)


def is_range_limit_error(exc: BaseException) -> bool:
    """True if ``exc`` is a provider refusing an ``eth_getLogs`` range (or result count) as too large."""
    return bool(_RANGE_WORDS.search(_message(exc)))


def _hinted_span(exc: BaseException, span: int) -> int | None:
    """The block span the provider's message allows, when it says one smaller than ``span``."""
    text = _message(exc)
    hinted = _HINTED_RANGE.search(text)
    if hinted:
        lo, hi = int(hinted.group(1), 16), int(hinted.group(2), 16)
        if 0 < hi - lo + 1 < span:
            return hi - lo + 1
    numbers = [int(n.replace(",", "")) for n in _NUMBERS.findall(text)]
    candidates = [n for n in numbers if 0 < n < span]
    return max(candidates) if candidates else None


def resolve_block(w3: Any, block: int | str) -> int:
    """A block number for ``block`` (a number, or a tag such as ``"latest"``)."""
    if isinstance(block, int) and not isinstance(block, bool):
        return block
    if block == "latest":
        return int(w3.eth.block_number)
    if block == "earliest":
        return 0
    return int(w3.eth.get_block(block)["number"])


def read_logs(
    w3: Any,
    address: str | Sequence[str] | None,
    from_block: int | str,
    to_block: int | str = "latest",
    *,
    topics: Sequence[Any] | None = None,
    chunk: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[Any]:
    """Every log of ``address`` (and ``topics``) in ``[from_block, to_block]``, oldest first.

    At most ``chunk`` blocks per ``eth_getLogs`` (default: the limit learned for this provider, else
    :data:`DEFAULT_CHUNK`); a refusal as too wide shrinks the chunk and is retried, and the smaller limit is
    remembered for the provider. ``progress(blocks_done, blocks_total)`` is called after each chunk.
    Raises the provider's own error for anything that is not a range refusal, and :class:`LogQueryError`
    if even a one-block query is refused.
    """
    start, end = resolve_block(w3, from_block), resolve_block(w3, to_block)
    provider = getattr(w3, "provider", None)
    with _GUARD:
        learned = _LIMITS.get(provider) if provider is not None else None
    span = max(1, min(chunk or DEFAULT_CHUNK, learned or DEFAULT_CHUNK))
    base: dict[str, Any] = {}
    if address is not None:
        base["address"] = (to_checksum_address(address) if isinstance(address, str)
                           else [to_checksum_address(a) for a in address])
    if topics is not None:
        base["topics"] = list(topics)
    total = max(end - start + 1, 0)
    out: list[Any] = []
    lo = start
    while lo <= end:
        hi = min(lo + span - 1, end)
        try:
            logs = w3.eth.get_logs({**base, "fromBlock": lo, "toBlock": hi})
        except Exception as exc:  # noqa: BLE001 - providers differ in exception type; the message decides
            if not is_range_limit_error(exc):
                raise
            width = hi - lo + 1
            if width <= 1:
                raise LogQueryError(
                    f"the provider refuses eth_getLogs even for block {lo} alone ({_message(exc)[:200]}); "
                    "fix: use an RPC that serves logs (an archive or logs-enabled endpoint)", field="rpc_url",
                ) from exc
            span = max(1, min(_hinted_span(exc, width) or width // 2, width - 1))
            if provider is not None:
                with _GUARD:
                    _LIMITS[provider] = min(_LIMITS.get(provider, span), span)
            continue
        out.extend(logs)
        if progress is not None:
            progress(hi - start + 1, total)
        lo = hi + 1
    if progress is not None and total == 0:
        progress(0, 0)
    return out


def _earliest(w3: Any) -> int:
    """The number of the chain's first block (0, or more on a chain that starts from a later genesis)."""
    try:
        return int(w3.eth.get_block("earliest")["number"])
    except Exception:  # noqa: BLE001 - a node without the tag: block 0
        return 0


def account_start_block(w3: Any, account: str, *, to_block: int | str = "latest") -> int:
    """The first block at which ``account`` had a non-zero nonce: no log of its (EIP-7702) code is older.

    Returns ``to_block + 1`` when its nonce is still 0 there (nothing to read). Binary search over
    ``eth_getTransactionCount(account, n)``, cached per chain and account. Raises :class:`LogQueryError`
    (set ``from_block``) when the node keeps no state for old blocks.
    """
    account = to_checksum_address(account)
    end = resolve_block(w3, to_block)
    if int(w3.eth.get_transaction_count(account, end)) == 0:
        return end + 1
    key = (id(getattr(w3, "provider", w3)), int(w3.eth.chain_id), account)
    with _GUARD:
        cached = _STARTS.get(key)
    if cached is not None and cached <= end:
        try:  # re-checked (two requests), so that a node restarted under the same provider never misleads
            if int(w3.eth.get_transaction_count(account, cached)) > 0 and (
                    cached == 0 or int(w3.eth.get_transaction_count(account, cached - 1)) == 0):
                return cached
        except Exception:  # noqa: BLE001 - fall through to the search, which reports a pruned node
            pass
    lo, hi = _earliest(w3), end  # invariant: nonce(hi) > 0; the answer is in [lo, hi]
    try:
        while lo < hi:
            mid = (lo + hi) // 2
            if int(w3.eth.get_transaction_count(account, mid)) > 0:
                hi = mid
            else:
                lo = mid + 1
    except Exception as exc:  # noqa: BLE001 - a pruned node refuses old state in its own words
        raise LogQueryError(
            f"cannot find where account {account} started: the node answers no state for old blocks "
            f"({str(exc)[:160]}); fix: pass from_block (on the command line --from-block), e.g. the block "
            "of the account's delegation",
        ) from exc
    with _GUARD:
        _STARTS[key] = lo
    return lo
