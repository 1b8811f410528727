"""Exactly once under faults: the steps every send shares (private; used by :mod:`smartkeys.account`).

0. :meth:`IntentGuard.exclusive`: steps 1-3 run under the signer's intent lock (threads and processes),
   taken before the nonce-lane locks, so one intent sent on two paths at once is checked and recorded once.
1. :meth:`IntentGuard.check_prior`: an earlier unacknowledged entry with the same intent id is settled
   first; if it landed (or may still land) the retry is refused. So is a retry of an unnamed intent that
   :func:`~smartkeys.outbox.settle` found landed after an unknown outcome (its hold), unless ``repeat``.
2. :meth:`IntentGuard.record`: the signed intent (hash, nonce lane, payload) is written to the outbox and
   fsync-ed; only then does anything leave the process (``on_submit`` sees it first).
3. After sending, a fault means the outcome is unknown: :meth:`IntentGuard.unknown` looks the hash up,
   re-sends the same signed payload once if its nonce is free, and either returns what landed or raises
   :class:`~smartkeys.errors.OutcomeUnknownError`. A refusal after sending (``AA25``, ``nonce too low``) is
   looked up too before it is reported: the first attempt may have landed (:meth:`IntentGuard.refused`).
   Only an answer that certainly means "refused, in no pool" (:func:`is_certain_refusal`) is reported as
   a refusal; any other error after the request left the process is an unknown outcome.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from smartkeys.errors import (
    DuplicateIntentError,
    NetworkError,
    NonceConflictError,
    OutcomeUnknownError,
    SmartKeysError,
)
from smartkeys.outbox import (
    DROPPED,
    LANDED,
    PENDING,
    REVERTED,
    Intent,
    Outbox,
    auto_intent_id,
    call_summary,
    lookup,
    settle,
)


def _transport_faults() -> tuple[type[BaseException], ...]:
    """Exceptions that, raised after a send, leave its outcome unknown (transport faults, timeouts, garbled
    answers, a node's JSON-RPC error object: it is sorted out by the caller with :func:`is_nonce_refusal`)."""
    import requests

    from smartkeys.bundler import BundlerConnectionError, BundlerRPCError

    names = ("ProviderConnectionError", "TimeExhausted", "BadResponseFormat", "Web3RPCError")
    from web3 import exceptions as w3e

    found = tuple(getattr(w3e, n) for n in names if hasattr(w3e, n))
    return (NetworkError, BundlerConnectionError, BundlerRPCError, requests.RequestException, ConnectionError,
            TimeoutError, ValueError, *found)


def is_nonce_refusal(exc: BaseException) -> bool:
    """A node's or bundler's "this nonce is used" refusal (nonce too low, AA25, replacement underpriced)."""
    code = getattr(exc, "code", None)
    text = str(exc).lower()
    return code == "AA25" or "nonce too low" in text or "invalid account nonce" in text \
        or "replacement transaction underpriced" in text or "nonce has already been used" in text


#: Node answers that certainly mean "refused, and not taken into any pool": the transaction itself is
#: invalid for every node (a bad signature, a sender that cannot pay, a gas limit no block holds...).
#: Everything else after the request left the process -- a gateway's ``-32603 upstream request timeout``,
#: an unknown ``-32000`` -- leaves the outcome unknown: it is settled by hash and nonce lane.
_CERTAIN_REFUSALS = (
    "insufficient funds", "invalid signature", "invalid sender", "invalid transaction signature",
    "intrinsic gas too low", "exceeds block gas limit", "gas limit reached", "oversized data",
    "transaction type not supported", "tx type not supported", "invalid chain id", "chain id mismatch",
    "max priority fee per gas higher than max fee per gas", "tip higher than fee cap", "tip above fee cap",
    "max fee per gas higher than", "fee cap less than", "failed to decode transaction",
)


def is_certain_refusal(exc: BaseException) -> bool:
    """A node's JSON-RPC error object that certainly means the transaction was refused and is in no pool
    (:data:`_CERTAIN_REFUSALS`); a transport fault, a gateway error or anything unrecognised is not one."""
    from smartkeys.errors import NetworkError

    if isinstance(exc, NetworkError) or is_nonce_refusal(exc) or is_already_known(exc):
        return False
    try:
        from web3.exceptions import Web3RPCError
    except ImportError:  # pragma: no cover - web3 < 7
        Web3RPCError = ValueError  # type: ignore[misc,assignment]  # noqa: N806
    answered = isinstance(exc, Web3RPCError) or (
        type(exc) is ValueError and isinstance(exc.args[0] if exc.args else None, dict))
    text = str(exc).lower()
    return answered and any(reason in text for reason in _CERTAIN_REFUSALS)


def refusal_error(exc: BaseException, *, hash: bytes | None = None) -> SmartKeysError:
    """A node's certain refusal of a transaction as a typed error (web3's ``Web3RPCError`` is not one)."""
    from smartkeys.errors import TransactionRefusedError

    message = getattr(exc, "message", None) or str(exc)
    return TransactionRefusedError(str(message)[:200], hash=hash)


def is_already_known(exc: BaseException) -> bool:
    """The node or bundler already holds this very transaction / operation (an earlier attempt reached it)."""
    text = str(exc).lower()
    return "already known" in text or "already imported" in text or "known transaction" in text


class IntentGuard:
    """One intent's journey through the outbox (see the module docstring)."""

    def __init__(self, w3: Any, outbox: Outbox | None, *, chain_id: int, account: str, signer: str,
                 session_id: bytes | None, calls: Sequence[Any], name: str | None,
                 on_submit: Callable[[Intent], None] | None = None, repeat: bool = False) -> None:
        self.w3 = w3
        self.outbox = outbox
        self.chain_id = chain_id
        self.account = account
        self.signer = signer
        self.session_id = session_id
        self.calls = list(calls)
        self.intent_id = name if name else auto_intent_id(chain_id, account, signer, calls)
        self.on_submit = on_submit
        self.repeat = bool(repeat)
        self.intent: Intent | None = None

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the intent lock of (chain, account, signer) -- threads and processes
        (:func:`smartkeys.locks.lane_lock`, kind ``"intent"``) -- so that the duplicate check and the record
        of one intent exclude every other send of the same signer, on any path (direct, self-bundled,
        bundler). Taken before (outside) the nonce-lane locks; not re-entrant."""
        from smartkeys.locks import lane_lock, shared_chain

        with lane_lock(self.chain_id, self.account, int(self.signer, 16), kind="intent",
                       cross_process=shared_chain(self.w3)):
            yield

    # -- before signing ---------------------------------------------------------------

    def check_prior(self, bundler: Any = None) -> None:
        """Refuse a retry of an intent that landed or may still land; let one through that cannot land."""
        if self.outbox is None:
            return
        now = time.time()
        for prior in self.outbox.find(self.intent_id, chain_id=self.chain_id, signer=self.signer):
            if prior.acknowledged and not prior.named:
                if prior.status == LANDED and not self.repeat and (prior.hold_until or 0) > now:
                    # its outcome was unknown to the caller, then settled as landed: a retry is refused
                    raise DuplicateIntentError(intent_id=prior.intent_id, status=prior.status, hash=prior.hash,
                                               transaction_hash=prior.transaction_hash, settled=True)
                continue
            if prior.status == PENDING:
                try:
                    prior = settle(self.w3, self.outbox, prior, bundler=bundler, resend_if_free=True, wait=5.0)
                except SmartKeysError:
                    raise
                except Exception as exc:  # noqa: BLE001 - a fault while settling: still unknown
                    raise OutcomeUnknownError(hash=prior.hash, kind=prior.kind, sender=prior.sender, nonce=prior.nonce,
                                              intent_id=prior.intent_id, cause=exc) from None
            if prior.status in (LANDED, REVERTED) and (prior.named or not prior.acknowledged):
                if prior.status == REVERTED and not prior.named:
                    self.outbox.acknowledge(prior)  # it paid gas but moved nothing: a retry is a new attempt
                    continue
                raise DuplicateIntentError(intent_id=prior.intent_id, status=prior.status, hash=prior.hash,
                                           transaction_hash=prior.transaction_hash, named=prior.named)
            if prior.status == PENDING:
                raise DuplicateIntentError(intent_id=prior.intent_id, status=PENDING, hash=prior.hash)
            if prior.status == DROPPED and not prior.acknowledged:
                self.outbox.acknowledge(prior)

    # -- between signing and sending ----------------------------------------------------

    def record(self, *, kind: str, hash: bytes, sender: str, nonce: int, via: str, payload: dict[str, Any]) -> Intent:
        try:
            from_block = int(self.w3.eth.block_number)
        except Exception:  # noqa: BLE001 - we just talked to the node; if it fails now, look from genesis
            from_block = 0
        intent = Intent(
            intent_id=self.intent_id, kind=kind, hash=bytes(hash), chain_id=self.chain_id, sender=sender,
            nonce=int(nonce), signer=self.signer, account=self.account, via=via, from_block=from_block,
            created=time.time(), calls=call_summary(self.calls), session_id=self.session_id, payload=payload,
        )
        if self.outbox is not None:
            self.outbox.record(intent)
        self.intent = intent
        if self.on_submit is not None:
            self.on_submit(intent)
        return intent

    # -- after sending -------------------------------------------------------------------

    def done(self, status: str = LANDED, **info: Any) -> None:
        """The outcome was reported to the caller."""
        if self.outbox is not None and self.intent is not None:
            self.intent = self.outbox.mark(self.intent, status, acknowledged=True, **info)

    def not_sent(self, note: str) -> None:
        """It was refused before it could spread: it can never land."""
        self.done(DROPPED, note=note[:200])

    def unknown(self, cause: BaseException, *, bundler: Any = None, wait: float = 10.0) -> Intent:
        """A fault after sending: settle now if possible. Returns the landed intent, or raises
        :class:`NonceConflictError` (dropped) / :class:`OutcomeUnknownError` (still pending or unreachable)."""
        intent = self.intent
        assert intent is not None
        try:
            settled = settle(self.w3, self.outbox, intent, bundler=bundler, resend_if_free=True, wait=wait)
        except Exception:  # noqa: BLE001 - the node is down too: the outcome stays unknown
            settled = intent
        return self._conclude(settled, cause)

    def refused(self, exc: BaseException, *, bundler: Any = None) -> Intent | None:
        """A refusal after sending: if the nonce was used, look the hash up first (an earlier attempt of this
        very payload may have landed). Returns the landed intent, or None if ``exc`` should be raised as is
        (after recording that it cannot land)."""
        intent = self.intent
        assert intent is not None
        try:
            found = lookup(self.w3, intent)  # whatever the refusal says, an earlier attempt may have landed
        except Exception as err:  # noqa: BLE001
            raise OutcomeUnknownError(hash=intent.hash, kind=intent.kind, sender=intent.sender, nonce=intent.nonce,
                                      intent_id=intent.intent_id, cause=err) from exc
        if found.status == PENDING and not found.note and not is_nonce_refusal(exc):  # refused, nonce still free
            self.not_sent(str(exc))
            return None
        if found.status == PENDING:
            # the nonce is free on chain but taken in a pool: not certain that ours is in none -> settle
            # (look it up again, re-send the same signed payload, wait)
            return self.unknown(exc, bundler=bundler)
        settled = replace(intent, status=found.status, transaction_hash=found.transaction_hash,
                          block_number=found.block_number, gas_used=found.gas_used, note=found.note)
        if self.outbox is not None:
            settled = self.outbox.mark(intent, settled.status, transaction_hash=settled.transaction_hash,
                                       block_number=settled.block_number, gas_used=settled.gas_used, note=settled.note)
        return self._conclude(settled, exc)

    def _conclude(self, settled: Intent, cause: BaseException) -> Intent:
        self.intent = settled
        if settled.status in (LANDED, REVERTED):
            return settled
        if settled.status == DROPPED:
            if self.outbox is not None:
                self.intent = self.outbox.acknowledge(settled)
            raise NonceConflictError(sender=settled.sender, nonce=settled.nonce, hash=settled.hash,
                                     detail=settled.note or str(cause)[:120]) from cause
        raise OutcomeUnknownError(hash=settled.hash, kind=settled.kind, sender=settled.sender, nonce=settled.nonce,
                                  intent_id=settled.intent_id, cause=cause) from cause


def transport_faults() -> tuple[type[BaseException], ...]:
    """See :func:`_transport_faults` (built lazily: web3 and the bundler client import late)."""
    return _transport_faults()
