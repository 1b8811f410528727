"""Owner and agent clients for a smartkeys account (an EOA delegated to ``SmartKeysAccount``).

- :class:`Owner` holds the EOA's key: delegate / undelegate (EIP-7702), execute calls and batches, send
  owner user operations, grant and revoke sessions.
- :class:`SessionAgent` holds a session key and its policy: act through the account, as a direct
  transaction or as a user operation signed by the session key.

Both take a ``Web3`` first and check the RPC's chain id before signing anything.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from eth_account.signers.base import BaseAccount
from eth_typing import ChecksumAddress, Hash32
from web3 import Web3
from web3.types import Wei

from smartkeys import artifacts
from smartkeys._once import IntentGuard, is_certain_refusal, is_nonce_refusal, refusal_error, transport_faults
from smartkeys.authorization import authorization_nonce, sign_authorization
from smartkeys.deployments import ENTRY_POINT_V08, account_address
from smartkeys.encoding import checked_address, checked_uint, nonce_key_for, parse_delegation, parse_quantity
from smartkeys.entrypoint import EntryPoint, UserOpResult
from smartkeys.errors import (
    AuthorizationSkippedError,
    ChainStateError,
    DelegationError,
    InvalidInputError,
    NetworkError,
    NonceConflictError,
    NotDelegatedError,
    RevertError,
    SmartKeysError,
    TransactionFailedError,
    UserOperationError,
    decode_revert,
    get_error_class,
    register_contract_errors,
)
from smartkeys.locks import lane_lock, shared_chain
from smartkeys.outbox import DROPPED, LANDED, REVERTED
from smartkeys.policy_codec import SessionPolicy
from smartkeys.tx import check_chain_id, revert_data_of, revert_exceptions, send_transaction, suggest_fees
from smartkeys.userop import DUMMY_SIGNATURE, EIP7702_FACTORY, PackedUserOperation, sign_user_op, user_op_hash

if TYPE_CHECKING:  # preflight imports Call from this module: import it lazily at run time
    from smartkeys.bundler import Bundler, BundlerClient, SelfBundler
    from smartkeys.journal import RefusalJournal
    from smartkeys.keystore import SessionKey
    from smartkeys.outbox import Intent, Outbox
    from smartkeys.preflight import Charges, SessionState

__all__ = [
    "AgentReceipt",
    "AssetReport",
    "Call",
    "DelegationError",
    "Owner",
    "SessionAgent",
    "SessionReport",
    "account_contract",
    "choose_session",
]

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
_ACCOUNT_ABI = artifacts.load("SmartKeysAccount")["abi"]
#: What to do about the refusals that come from the rules against bypasses (security.md, "caps are what leaves").
ACCOUNT_ERROR_HINTS = {
    "SessionAlreadyGranted": "a session id is used once: grant the policy again with another salt "
                             "(dataclasses.replace(policy, salt=owner.next_free_salt(policy)))",
    "TokenFunctionNotAccountable": "on a capped token a session may call only transfer, transferFrom, approve, "
                                   "increaseAllowance, decreaseAllowance, burn, deposit and withdraw",
    "TokenCallReturnedFalse": "the token refused the call without reverting; nothing was charged: check the "
                              "balance, allowance or pause state of the token",
    "UncappedAsset": "add a token cap for this asset, or set allow_uncapped_assets=True if the key may move it "
                     "without limit",
    "EmptyBatch": "give at least one call",
    "RulesBypassed": "an any-selector permission on this target would allow the call whatever its argument rules "
                     "say: list the target's functions one by one instead of \"*\", or drop the rules",
    "TokenBalanceUnreadable": "a capped token must answer balanceOf(address): remove the cap or the token",
    "SuccessorRaisesLimit": "rotate and renew can only keep or lower a limit: grant a new session (smartkeys grant) "
                            "for a larger budget",
    "SuccessorChangesField": "rotate and renew keep the scope, periods, flags and window start (and renew the key): "
                             "grant a new session to change them",
}
register_contract_errors(_ACCOUNT_ABI, hints=ACCOUNT_ERROR_HINTS)

#: Local defaults for self-bundled operations (a bundler's estimate replaces them when one is used).
DEFAULT_VERIFICATION_GAS = 150_000
DEFAULT_PRE_VERIFICATION_GAS = 50_000
_CALL_GAS_MARGIN = 25_000
_SPONSORED_CALL_GAS = 100_000


@dataclass(frozen=True)
class Call:
    """One call made by the account: ``target.call{value}(data)``."""

    target: str
    value: int = 0
    data: bytes = b""

    def __post_init__(self) -> None:
        object.__setattr__(self, "target", Web3.to_checksum_address(self.target))
        if isinstance(self.data, str):
            object.__setattr__(self, "data", bytes.fromhex(self.data.removeprefix("0x")))

    def as_tuple(self) -> tuple[str, int, bytes]:
        return (self.target, self.value, self.data)


@dataclass(frozen=True)
class AgentReceipt:
    """What one :meth:`SessionAgent.call` / ``transfer`` / ``batch`` did.

    ``path`` is ``"user_op"`` or ``"direct"``; ``user_op_hash`` is None on the direct path; ``gas_used`` is the
    operation's ``actualGasUsed`` (user op) or the transaction's ``gasUsed`` (direct); ``charges`` is what
    :func:`smartkeys.preflight.preflight` predicted the session ledger would be charged.
    """

    path: str
    transaction_hash: bytes
    user_op_hash: bytes | None
    success: bool
    gas_used: int
    charges: Charges


@dataclass(frozen=True)
class AssetReport:
    """One budget of a session: ``asset`` is ``"native"``, ``"gas"`` or a token address.

    ``cap`` is the cumulative cap (0: nothing may be spent). ``period`` is 0 when the asset has no periodic
    cap; otherwise ``period_spent`` counts the current period only (as the contract would at ``as_of``).
    """

    asset: str
    spent: int
    cap: int
    remaining: int
    period: int = 0
    period_cap: int = 0
    period_spent: int = 0
    period_remaining: int = 0


@dataclass(frozen=True)
class SessionReport:
    """A session's status as read from chain at block time ``as_of`` (see :meth:`Owner.session_report`).

    ``live`` is the contract's liveness (granted, not revoked, current epoch); the window is
    ``(valid_after, valid_until]``. ``max_uses`` 0 means unlimited.
    """

    session_id: bytes
    key: str
    live: bool
    valid_after: int
    valid_until: int
    uses: int
    max_uses: int
    assets: tuple[AssetReport, ...]
    as_of: int
    #: The policy's ALLOW_UNCAPPED_ASSETS flag: the key may move assets that no cap limits. Reports say so loudly.
    allow_uncapped_assets: bool = False
    #: The granted policy (for its argument rules and rate limits) and its rate ledger (last use, uses in the
    #: period: :attr:`smartkeys.preflight.SessionState.rate_ledger`), when known.
    policy: SessionPolicy | None = None
    rate_ledger: Any = None

    @property
    def in_window(self) -> bool:
        """True if a use at ``as_of + 1`` (the next block) falls inside the window."""
        return self.valid_after < self.as_of + 1 <= self.valid_until

    @property
    def uses_remaining(self) -> int | None:
        """Uses left: 0 once revoked (the key can never use this session again), None when unlimited."""
        if not self.live:
            return 0
        return max(self.max_uses - self.uses, 0) if self.max_uses else None

    @property
    def status(self) -> str:
        """``"revoked"``, ``"expired"``, ``"not yet"`` (before the window), ``"used up"`` or ``"live"``, as a use in
        the next block (``as_of + 1``) would find it."""
        if not self.live:
            return "revoked"
        if self.as_of + 1 > self.valid_until:
            return "expired"
        if self.as_of + 1 <= self.valid_after:
            return "not yet"
        if self.max_uses and self.uses >= self.max_uses:
            return "used up"
        return "live"

    @property
    def seconds_left(self) -> int:
        """Seconds until the window ends (0 once it has ended or the session was revoked)."""
        if not self.live:
            return 0
        return max(self.valid_until - self.as_of, 0)

    def to_dict(self, tokens: Mapping[str, tuple[str, int]] | None = None,
                names: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The report as JSON (the shape ``smartkeys status --json`` prints; see README "JSON output").

        Amounts (wei for ``native`` and ``gas``, base units for tokens) are **decimal strings**, each with a
        ``*_text`` twin in human units (``tokens``: address -> (symbol, decimals), from
        :func:`smartkeys.audit.token_meta`; a token not in it is shown in base units). Times are unix seconds
        (JSON integers) with ``*_iso`` UTC text; ``seconds_left`` counts to the end of the window;
        ``uses_left`` is None when uses are unlimited; a periodic cap gives ``period`` (seconds),
        ``period_resets_at`` (unix seconds) and ``period_rule`` (text). With the policy known,
        ``argument_rules`` (:func:`smartkeys.policy_view.rules_view`: recipient lists with their ``names``,
        address -> name, and bounds in the token's units) and ``rate_limits``
        (:func:`smartkeys.policy_view.rate_view`, None without: interval, uses per period, ``next_use_at``).
        """
        from smartkeys.refusals import duration_text
        from smartkeys.timefmt import next_period_start, period_text, utc_text

        assets = []
        for a in self.assets:
            doc: dict[str, Any] = {"asset": a.asset, "symbol": _symbol(a.asset, tokens)}
            for name in ("spent", "cap", "remaining"):
                doc.update(amount_fields(name, a.asset, getattr(a, name), tokens))
            doc["period"] = a.period
            if a.period:
                for name in ("period_cap", "period_spent", "period_remaining"):
                    doc.update(amount_fields(name, a.asset, getattr(a, name), tokens))
                resets = next_period_start(self.as_of, a.period)
                doc.update(period_resets_at=resets, period_resets_at_iso=utc_text(resets),
                           period_rule=period_text(a.period))
            assets.append(doc)
        return {
            "session_id": "0x" + self.session_id.hex(), "key": self.key, "status": self.status, "live": self.live,
            "in_window": self.in_window, "as_of": self.as_of,
            "valid_after": self.valid_after, "valid_after_iso": utc_text(self.valid_after),
            "valid_until": self.valid_until, "valid_until_iso": utc_text(self.valid_until),
            "seconds_left": self.seconds_left, "time_left_text": duration_text(self.seconds_left),
            "uses": self.uses, "max_uses": self.max_uses, "uses_left": self.uses_remaining,
            "allow_uncapped_assets": self.allow_uncapped_assets, "assets": assets,
            **self._rules_doc(tokens, names),
        }

    def _rules_doc(self, tokens: Mapping[str, tuple[str, int]] | None,
                   names: Mapping[str, str] | None) -> dict[str, Any]:
        if self.policy is None:
            return {}
        from smartkeys.policy_view import rate_view, rules_view

        # a use could happen in the next block at the earliest (as `status` and `in_window` count)
        return {"argument_rules": rules_view(self.policy, names=names, tokens=tokens),
                "rate_limits": rate_view(self.policy, self.rate_ledger, self.as_of + 1)}

    def asset(self, name: str) -> AssetReport:
        """The report of ``"native"``, ``"gas"`` or a token address."""
        if name not in ("native", "gas"):
            name = checked_address(name, "asset")
        for a in self.assets:
            if a.asset == name:
                return a
        raise InvalidInputError("asset", name, "'native', 'gas' or a capped token of the policy",
                                f"use one of {', '.join(a.asset for a in self.assets)}")


def _symbol(asset: str, tokens: Mapping[str, tuple[str, int]] | None) -> str | None:
    if asset in ("native", "gas"):
        return "ETH"
    meta = (tokens or {}).get(asset)
    return meta[0] if meta else None


def amount_fields(name: str, asset: str, value: int, tokens: Mapping[str, tuple[str, int]] | None = None
                  ) -> dict[str, str]:
    """``{name: "<base units>", name_text: "<human>"}``: one amount as the JSON reports give it (decimal string,
    exact; ``*_text`` from :func:`smartkeys.audit.format_asset`).

    >>> amount_fields("cap", "native", 10**17)
    {'cap': '100000000000000000', 'cap_text': '0.1 ETH'}
    """
    from smartkeys.audit import format_asset

    return {name: str(int(value)), f"{name}_text": format_asset(asset, int(value), dict(tokens or {}))}


def grant_warnings(policy: SessionPolicy, *, bundler_configured: bool = False) -> list[str]:
    """What a policy cannot do that it seems meant for, as sentences with the fix (``smartkeys grant`` prints
    them; nothing is refused for them):

    - no ``gas_budget`` while a bundler is configured: every user operation of the session is refused
      (``GasBudgetExceeded`` with budget 0);
    - a token cap on a token the scope never lets the key call: the cap can never be used;
    - native caps on a scope whose every permission is a token with a cap (no plain transfer possible).
    """
    out = []
    if bundler_configured and policy.gas_budget == 0:
        out.append("this policy has no gas budget (limits.gas_budget), but a bundler is configured: every user "
                   "operation of this session will be refused (GasBudgetExceeded, budget 0); add limits.gas_budget "
                   "(e.g. \"0.01 ether\"), or let the key send directly (--via direct) and pay its own gas")
    targets = {p.target for p in policy.permissions}
    for cap in policy.token_caps:
        if cap.token not in targets:
            out.append(f"the policy caps token {cap.token} but allows no call to it: the cap can never be used; "
                       "add an [[allow]] entry for the token, or drop the cap")
    if (policy.native_total or policy.native_per_call) and targets and \
            targets <= {c.token for c in policy.token_caps} and \
            not any(p.selector == b"\x00\x00\x00\x00" for p in policy.permissions):
        out.append("the policy sets native (ETH) limits, but its scope allows only token calls: the key cannot "
                   "send ETH; allow a recipient (an [[allow]] entry with functions = \"*\"), or drop the native limits")
    return out


def _asset(asset: str, spent: int, cap: int, period: int = 0, period_cap: int = 0, ledger: Any = None,
           now: int = 0) -> AssetReport:
    period_spent = 0
    if period and ledger is not None and ledger.period_index == now // period:
        period_spent = ledger.period_spent
    return AssetReport(
        asset, spent, cap, max(cap - spent, 0), period, period_cap if period else 0, period_spent,
        max(period_cap - period_spent, 0) if period else 0,
    )


def build_session_report(policy: SessionPolicy, state: SessionState, now: int) -> SessionReport:
    """A :class:`SessionReport` from a policy and its :class:`~smartkeys.preflight.SessionState` at ``now``."""
    assets = [
        _asset("native", state.native_spent, policy.native_total, policy.native_period, policy.native_per_period,
               state.native_ledger, now),
        _asset("gas", state.gas_spent, policy.gas_budget),
    ]
    for cap in policy.token_caps:
        ledger = state.tokens.get(cap.token)
        spent = ledger.total_spent if ledger is not None else 0
        assets.append(_asset(cap.token, spent, cap.cap, cap.period, cap.per_period, ledger, now))
    return SessionReport(
        policy.session_id, policy.key, state.live, policy.valid_after, policy.valid_until, state.uses,
        policy.max_uses, tuple(assets), now, policy.allow_uncapped_assets, policy, state.rate_ledger,
    )


def _next_timestamp(w3: Web3) -> int:
    """Estimate of the next block's timestamp: the latest block's + 1."""
    return int(w3.eth.get_block("latest")["timestamp"]) + 1


_TRANSFER_SELECTOR = bytes.fromhex("a9059cbb")


def account_contract(w3: Web3, address: str):
    """A web3 contract object for the smartkeys account at ``address`` (an EOA delegated to it)."""
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=_ACCOUNT_ABI)


def _build_op(
    w3: Web3,
    sender: str,
    call_data: bytes,
    nonce: int,
    *,
    verification_gas_limit: int,
    call_gas_limit: int | None,
    pre_verification_gas: int,
) -> PackedUserOperation:
    if call_gas_limit is None:
        try:
            # gas price 0: the EntryPoint holds no ether of its own on a fresh chain
            estimate = w3.eth.estimate_gas({"from": ENTRY_POINT_V08, "to": sender, "data": call_data, "gasPrice": Wei(0)})
        except revert_exceptions() as exc:
            raise decode_revert(revert_data_of(exc) or b"") from None
        call_gas_limit = int(estimate) + _CALL_GAS_MARGIN
    max_fee, tip = suggest_fees(w3)
    return PackedUserOperation(
        sender=sender,
        nonce=nonce,
        call_data=call_data,
        call_gas_limit=call_gas_limit,
        verification_gas_limit=verification_gas_limit,
        pre_verification_gas=pre_verification_gas,
        max_fee_per_gas=max_fee,
        max_priority_fee_per_gas=tip,
    )


class Owner:
    """The owner of a smartkeys account: the EOA's own key.

    Owner transactions (grant, revoke, execute) and owner operations through a bundler follow the same
    exactly-once rules as an agent's (:meth:`SessionAgent.batch`): the hash is known before sending, a fault
    after sending is settled by lookup or raises :class:`~smartkeys.errors.OutcomeUnknownError`; the signed
    intent is recorded in the ``outbox`` first (by default ``$SMARTKEYS_HOME/outbox.jsonl``, as an agent's).
    One EOA's transactions are serialized across threads and processes.

    >>> # owner = Owner(w3, eoa_account); owner.delegate(); owner.execute(token, 0, data)
    """

    def __init__(
        self,
        w3: Web3,
        account: BaseAccount | SessionKey,
        *,
        chain_id: int | None = None,
        implementation: str | None = None,
        dangerously_allow_unknown_implementation: bool = False,
        outbox: Outbox | bool | None = True,
    ) -> None:
        """``implementation`` is what :meth:`delegate` points the EOA at: by default the canonical smartkeys
        account; otherwise it must be a known smartkeys deployment of this chain (the canonical address or the
        ``SmartKeysAccount`` entry of ``deployments/<chainId>.json``, see
        :func:`smartkeys.delegation.known_implementations`), else
        :class:`~smartkeys.errors.UnknownImplementationError` before anything is signed. Delegating hands the
        code full control of the EOA: pass ``dangerously_allow_unknown_implementation=True`` only for code you
        audited (e.g. the Simple7702Account baseline in benchmarks).

        ``account`` signs for the owner: a ``LocalAccount`` from the encrypted keystore (the default, and the
        fast path), a ``SessionKey``, or any eth-account ``BaseAccount`` -- a hardware-wallet or KMS adapter, or
        a remote signer (:class:`smartkeys.signers.JsonRpcSigner`). A signer that cannot sign an EIP-7702
        authorization raises :class:`~smartkeys.errors.SignerUnsupportedError` from :meth:`delegate` (nothing
        sent); grants, revokes, executes and owner operations need only transactions and typed data.

        ``outbox``: as :class:`SessionAgent`'s -- ``True`` (the default) is ``Outbox()``
        (``$SMARTKEYS_HOME/outbox.jsonl``), an :class:`~smartkeys.outbox.Outbox` that file, ``None``/``False``
        records nothing (**unsafe under faults**: a retry after an unknown outcome may pay twice).
        """
        from smartkeys.delegation import known_implementations
        from smartkeys.signers import as_signer

        self.w3 = w3
        self.outbox: Outbox | None = _resolve_outbox(outbox)
        self._account = account = as_signer(account, "account")
        self.chain_id = check_chain_id(w3, chain_id)
        if implementation is not None:
            implementation = checked_address(implementation, "implementation")
            known = known_implementations(self.chain_id)
            if implementation not in known and dangerously_allow_unknown_implementation is not True:
                from smartkeys.errors import UnknownImplementationError

                raise UnknownImplementationError(implementation, known, self.chain_id)
        self._implementation = Web3.to_checksum_address(implementation or account_address())
        self.contract = account_contract(w3, account.address)
        self.entry_point = EntryPoint(w3)

    def __repr__(self) -> str:
        return f"Owner(address={self.address}, chain_id={self.chain_id})"

    @property
    def implementation(self) -> ChecksumAddress:
        """What :meth:`delegate` points the EOA at; checked at construction, read-only afterwards."""
        return self._implementation

    @property
    def address(self) -> ChecksumAddress:
        return self._account.address

    # -- EIP-7702 ---------------------------------------------------------------------

    def delegation(self) -> str | None:
        """The address this EOA's code delegates to, or None."""
        return parse_delegation(bytes(self.w3.eth.get_code(self.address)))

    def delegate(self, *, sponsor: BaseAccount | None = None, keep_sessions: bool = False,
                 from_block: int | None = None):
        """Delegate this EOA to the smartkeys account with a set-code (type 4) transaction.

        Self-sponsored by default (the authorization then carries the transaction's nonce + 1, since the
        sender's own nonce is bumped first); pass ``sponsor`` to have another account pay. Nonces are read at
        the ``pending`` block, so transactions of this EOA sent but not yet mined are counted. Sessions
        granted during an earlier delegation survive in storage: unless ``keep_sessions`` is True they are
        revoked (``revokeAllSessions``) in the same transaction; earlier grants are looked for in the account's
        logs from ``from_block`` (default: its first transaction block, see :mod:`smartkeys.logs`).

        Raises :class:`~smartkeys.errors.AuthorizationSkippedError` before sending when the authorization's
        nonce would not match, and after mining when the chain skipped it anyway (the account's code is
        then not the implementation: something else of this EOA was mined first).
        """
        if not self.w3.eth.get_code(self.implementation):
            raise DelegationError(
                f"no smartkeys account code at {self.implementation} on chain {self.chain_id}; "
                "fix: deploy it first (`smartkeys deploy`, or start_local_chain(deploy_smartkeys=True))"
            )
        data = b""
        if not keep_sessions and self._had_sessions(from_block):
            data = self.contract.encode_abi("revokeAllSessions", [])
        if data and sponsor is not None:
            # The sponsor's transaction cannot call owner-only functions itself; an owner-signed user op
            # in the same type-4 bundle keeps delegation and revocation atomic.
            return self._delegate_and_call_sponsored(data, sponsor)
        return self._set_code(self.implementation, sponsor, data)

    def undelegate(self, *, sponsor: BaseAccount | None = None, keep_sessions: bool = False):
        """Clear the EOA's code (delegate to the zero address).

        Storage outlives the code, so sessions would come back to life with a later delegation to smartkeys.
        Unless ``keep_sessions`` is True, every session is revoked first, through the account's ERC-7779
        ``onRedelegation`` hook, in its own owner transaction (a call in the set-code transaction itself would
        run after the code is gone). Raises :class:`AuthorizationSkippedError` if the authorization was skipped.
        """
        if not keep_sessions and self.delegation() == self.implementation and self._had_sessions():
            self._self_call(self.contract.encode_abi("onRedelegation", []), "revoke every session before leaving")
        return self._set_code(ZERO_ADDRESS, sponsor, b"")

    def _pending_nonce(self) -> int:
        """This EOA's next transaction nonce, counting its pending transactions (what a node will see)."""
        return int(self.w3.eth.get_transaction_count(self.address, "pending"))

    def _check_auth_nonce(self, auth, tx_nonce: int | None, delegate: str) -> None:
        """Refuse to send an authorization the chain would skip: self-sponsored, it must carry the set-code
        transaction's nonce + 1; sponsored (``tx_nonce`` None), the authority's pending nonce."""
        expected = tx_nonce + 1 if tx_nonce is not None else self._pending_nonce()
        if auth.nonce != expected:
            raise AuthorizationSkippedError(self.address, delegate, auth_nonce=auth.nonce, expected_nonce=expected)

    def _check_applied(self, auth, delegate: str, receipt, *, self_sponsored: bool) -> None:
        """After mining: the account's code at that block must be ``delegate``; else a typed error saying why."""
        block = int(receipt["blockNumber"])
        current = parse_delegation(bytes(self.w3.eth.get_code(self.address, block)))
        wanted = None if delegate == ZERO_ADDRESS else delegate
        if current == wanted:
            return
        try:  # the nonce the chain needed: the authority's nonce before the block, plus its own tx if it sent it
            needed = int(self.w3.eth.get_transaction_count(self.address, block - 1)) + (1 if self_sponsored else 0)
        except Exception:  # noqa: BLE001 - a node without historical state: say what is known
            needed = None
        raise AuthorizationSkippedError(self.address, delegate, auth_nonce=auth.nonce, expected_nonce=needed,
                                        current_delegation=current, tx_hash=bytes(receipt["transactionHash"]))

    def _set_code(self, delegate: str, sponsor: BaseAccount | None, data: bytes):
        tx: dict[str, Any] = {"to": self.address, "data": data}
        if sponsor is None:
            tx_nonce = self._pending_nonce()
            tx["nonce"] = tx_nonce  # fixed here so that the authorization's nonce (+1) matches it exactly
            auth = sign_authorization(self._account, delegate, self.chain_id,
                                      authorization_nonce(tx_nonce, self_sponsored=True))
            self._check_auth_nonce(auth, tx_nonce, delegate)
        else:
            auth = sign_authorization(self._account, delegate, self.chain_id,
                                      authorization_nonce(self._pending_nonce(), self_sponsored=False))
            self._check_auth_nonce(auth, None, delegate)
        tx["authorizationList"] = [auth]
        receipt = send_transaction(self.w3, sponsor or self._account, tx)
        self._check_applied(auth, delegate, receipt, self_sponsored=sponsor is None)
        return receipt

    def _delegate_and_call_sponsored(self, call_data: bytes, sponsor: BaseAccount):
        auth = sign_authorization(self._account, self.implementation, self.chain_id,
                                  authorization_nonce(self._pending_nonce(), self_sponsored=False))
        op = PackedUserOperation(
            sender=self.address,
            nonce=self.entry_point.get_nonce(self.address, 0),
            factory=EIP7702_FACTORY,
            call_data=call_data,
            call_gas_limit=_SPONSORED_CALL_GAS,
            verification_gas_limit=DEFAULT_VERIFICATION_GAS,
            pre_verification_gas=DEFAULT_PRE_VERIFICATION_GAS,
            max_fee_per_gas=0,  # the sponsor pays the bundle; the account owes the EntryPoint nothing
            max_priority_fee_per_gas=0,
            eip7702_auth=auth,
        )
        op = sign_user_op(op, self._account, ENTRY_POINT_V08, self.chain_id, delegate=self.implementation)
        self._check_auth_nonce(auth, None, self.implementation)
        (result,) = self.entry_point.handle_ops([op], sponsor)
        result.raise_for_failure()
        receipt = self.w3.eth.get_transaction_receipt(cast(Hash32, result.transaction_hash))
        self._check_applied(auth, self.implementation, receipt, self_sponsored=False)
        return receipt

    def _had_sessions(self, from_block: int | None = None) -> bool:
        """True if this account ever granted a session (it may be live again after re-delegation).

        Logs from ``from_block`` (default: the account's first transaction block; a fresh EOA reads none).
        When the node cannot say where to start (no historical state), True: revoking sessions that do not
        exist only moves the epoch, while keeping ones that do would revive old keys.
        """
        from smartkeys.logs import LogQueryError, account_start_block, read_logs

        event = self.contract.events.SessionGranted
        end = int(self.w3.eth.block_number)
        try:
            start = account_start_block(self.w3, self.address, to_block=end) if from_block is None else from_block
        except LogQueryError:
            return True
        return bool(read_logs(self.w3, self.address, start, end, topics=[event().topic]))

    # -- direct owner transactions ------------------------------------------------------

    def execute(self, target: str, value: int = 0, data: bytes = b"", *, repeat: bool = False):
        """One call from the account, sent as a transaction from the EOA to itself. ``repeat``: send it even
        though the same call, after an unknown outcome, was settled as landed (else
        :class:`~smartkeys.errors.DuplicateIntentError`; see :meth:`SessionAgent.batch`)."""
        return self._self_call(self.contract.encode_abi("execute", [Web3.to_checksum_address(target), value, data]),
                               "execute a call", smartkeys_only=False, repeat=repeat)

    def execute_batch(self, calls: Iterable[Call], *, repeat: bool = False):
        """Several calls in one transaction; any failure reverts them all (``repeat``: as :meth:`execute`)."""
        return self._self_call(self.contract.encode_abi("executeBatch", [[c.as_tuple() for c in calls]]),
                               "execute a batch", smartkeys_only=False, repeat=repeat)

    def grant(self, policy: SessionPolicy) -> bytes:
        """Grant ``policy`` on-chain; returns the session id (keccak256 of the packed policy).

        Each session id is granted once: a policy whose id was ever granted on this account (live, revoked or
        expired) is refused with the contract's ``SessionAlreadyGranted(sessionId)`` before anything is sent, so
        re-granting can never reset what a session spent. Grant a changed policy or another ``salt``
        (:meth:`next_free_salt`). The contract also refuses, with their custom errors, permissions that could
        move an asset it does not cap (``UncappedAsset``) unless ``policy.allow_uncapped_assets`` is set, and
        functions of a capped token it cannot account for (``TokenFunctionNotAccountable``).
        Raises :class:`~smartkeys.errors.NotDelegatedError` (nothing sent) if the account does not run smartkeys.
        """
        from smartkeys.token_rules import check_permissions

        check_permissions(policy)  # the asset rules that need no chain; the rest surface from the simulation
        if self.session_id_used(policy.session_id):
            raise get_error_class("SessionAlreadyGranted")(policy.session_id)
        self._self_call(self.contract.encode_abi("grantSession", [policy.encode()]), "grant a session")
        return policy.session_id

    def session_id_used(self, session_id: bytes) -> bool:
        """True if ``session_id`` was ever granted on this account (its status word is never cleared)."""
        return _status_word(self.w3, self.address, session_id) != 0

    def next_free_salt(self, policy: SessionPolicy, *, tries: int = 256) -> int:
        """The smallest ``salt`` >= ``policy.salt`` whose session id was never granted on this account.

        Raises :class:`InvalidInputError` if ``tries`` consecutive salts are all used.
        """
        for salt in range(policy.salt, min(policy.salt + tries, 2**32)):
            if not self.session_id_used(dataclasses.replace(policy, salt=salt).session_id):
                return salt
        raise InvalidInputError("salt", policy.salt, f"one of {tries} salts from it unused on {self.address}",
                                "pick a salt far from the ones used so far")

    def revoke(self, session_id: bytes):
        """Revoke one session immediately. :class:`~smartkeys.errors.NotDelegatedError` if not smartkeys."""
        return self._self_call(self.contract.encode_abi("revokeSession", [session_id]), "revoke a session")

    def rotate_session(self, policy: SessionPolicy, new_key: str, *, valid_until: int | None = None,
                       **limits: Any) -> SessionPolicy:
        """Give the live session of ``policy`` the key ``new_key``, keeping its policy and what it spent.

        One transaction (``rotateSessionSigner``, see :mod:`smartkeys.succession`): the old session id is revoked, so
        the old key is refused from that block on every path, and the successor policy -- ``policy`` with
        ``new_key``, optionally a new ``valid_until`` (unix s) and lower ``limits`` (keywords of
        :func:`smartkeys.succession.successor_policy`) -- is granted with the old counters copied exactly: the
        new key can spend only what was left. A salt is picked so that the successor's id was never used.
        Returns the successor policy (give it to the agent of ``new_key``; it is also in ``SessionGranted``);
        the transaction's receipt is kept as ``owner.last_succession_receipt``.

        Refused before anything is sent, with the contract's errors: a dead session (``SessionNotActive``,
        ``SessionEpochRevoked``), an ended one (``SessionExpired``), the same / zero / account key
        (``InvalidSessionKey``), a raise (``SuccessorRaisesLimit``) or any other change
        (``SuccessorChangesField``); :class:`~smartkeys.errors.NotDelegatedError` if the account is not smartkeys.
        """
        from smartkeys.succession import successor_policy

        nxt = successor_policy(policy, key=checked_address(new_key, "new_key"), valid_until=valid_until, **limits)
        return self._succeed("rotateSessionSigner", policy, nxt, "rotate a session")

    def renew_session(self, policy: SessionPolicy, *, valid_until: int | None = None, **limits: Any) -> SessionPolicy:
        """Extend (or shorten) the window of the live session of ``policy`` and/or lower its limits, keeping its
        key, scope and counters; ``renewSessionPolicy`` in one transaction (the old id is revoked in it).

        ``valid_until``: the new window end (unix s, not in the past); ``limits``: lower caps, as in
        :meth:`rotate_session`. "Revoke, then re-issue with a shorter lifetime" is ``renew_session(policy,
        valid_until=now + 3600)``. A limit above the current one is refused before anything is sent with
        ``SuccessorRaisesLimit(field, asset, current, proposed)`` naming the field and the fix; the contract
        refuses it too. Other errors as :meth:`rotate_session`. Returns the successor policy.
        """
        from smartkeys.succession import successor_policy

        nxt = successor_policy(policy, valid_until=valid_until, **limits)
        return self._succeed("renewSessionPolicy", policy, nxt, "renew a session")

    def _succeed(self, function: str, policy: SessionPolicy, nxt: SessionPolicy, action: str) -> SessionPolicy:
        from smartkeys.preflight import read_session_state
        from smartkeys.succession import preflight_succession

        if not isinstance(policy, SessionPolicy):
            raise InvalidInputError("policy", type(policy).__name__, "the granted SessionPolicy",
                                    "load it from chain: smartkeys.policy.policy_from_chain(w3, account, id)")
        self.require_smartkeys(action)
        if self.session_id_used(nxt.session_id):  # e.g. a renew that changes nothing but the salt
            start = dataclasses.replace(nxt, salt=(policy.salt + 1) % 2**32)
            nxt = dataclasses.replace(nxt, salt=self.next_free_salt(start))
        state = read_session_state(self.w3, self.address, policy)
        preflight_succession(policy, nxt, state, now=_next_timestamp(self.w3), rotate=function == "rotateSessionSigner")
        self.last_succession_receipt = self._self_call(
            self.contract.encode_abi(function, [policy.encode(), nxt.encode()]), action)
        return nxt

    def revoke_all(self):
        """Revoke every session granted so far (moves the epoch). :class:`~smartkeys.errors.NotDelegatedError`
        if the account does not run smartkeys (a call to an EOA without code would succeed and do nothing)."""
        return self._self_call(self.contract.encode_abi("revokeAllSessions", []), "revoke all sessions")

    def require_smartkeys(self, action: str) -> str:
        """The implementation this account runs; :class:`~smartkeys.errors.NotDelegatedError` naming ``action``
        unless it is this owner's implementation or a known smartkeys deployment of the chain."""
        from smartkeys.delegation import require_smartkeys

        try:
            return require_smartkeys(self.w3, self.address, action=action, implementation=self.implementation)
        except NotDelegatedError as exc:
            if exc.delegation is None:
                raise
            return require_smartkeys(self.w3, self.address, action=action)

    def _self_call(self, data: bytes, action: str, *, smartkeys_only: bool = True, repeat: bool = False):
        """A transaction from the EOA to itself, exactly once under faults (see :meth:`SessionAgent.batch`).

        A transaction from an EOA to itself succeeds whatever its data when the EOA has no code (or code that
        ignores it): what the account runs is checked first, so that nothing is reported done that was not.
        Session functions need smartkeys; plain execute needs the implementation this owner delegates to.
        """
        if smartkeys_only:
            self.require_smartkeys(action)
        else:
            from smartkeys.delegation import implementation_name

            current = self.delegation()
            if current != self.implementation:
                raise NotDelegatedError(self.address, current, self.implementation, action=action,
                                        runs=implementation_name(current))
        guard = IntentGuard(self.w3, self.outbox, chain_id=self.chain_id, account=self.address, signer=self.address,
                            session_id=None, calls=[Call(self.address, 0, data)], name=None, repeat=repeat is True)
        # one sender per EOA nonce at a time, across threads and processes (smartkeys.locks)
        with guard.exclusive(), \
                lane_lock(self.chain_id, self.address, kind="tx", cross_process=shared_chain(self.w3)), \
                _typed_chain_errors(self.w3):
            guard.check_prior()
            return _guarded_transaction(self.w3, guard, self._account, {"to": self.address, "data": data})

    # -- reports ------------------------------------------------------------------------

    def session_report(self, policy: SessionPolicy) -> SessionReport:
        """What the session of ``policy`` has used and has left, read from chain now."""
        from smartkeys.preflight import read_session_state

        if not isinstance(policy, SessionPolicy):
            raise InvalidInputError("policy", type(policy).__name__, "a SessionPolicy",
                                    "compile a PolicyModel first: model.compile(now)")
        state = read_session_state(self.w3, self.address, policy)
        return build_session_report(policy, state, int(self.w3.eth.get_block("latest")["timestamp"]))

    def granted_policies(self, *, from_block: int | None = None) -> list[SessionPolicy]:
        """Every policy this account ever granted (from its ``SessionGranted`` logs), oldest first, once each.

        Logs from ``from_block`` (default: the account's first transaction block), in provider-sized chunks."""
        from smartkeys.policy import granted_policies

        return granted_policies(self.w3, self.address, from_block=from_block)

    def sessions(self, *, from_block: int | None = None) -> list[SessionReport]:
        """A :class:`SessionReport` for every session this account ever granted (revoked ones have live=False)."""
        return [self.session_report(p) for p in self.granted_policies(from_block=from_block)]

    # -- owner user operations ----------------------------------------------------------

    def build_user_op(
        self,
        calls: Sequence[Call],
        *,
        nonce_key: int = 0,
        verification_gas_limit: int = DEFAULT_VERIFICATION_GAS,
        call_gas_limit: int | None = None,
        pre_verification_gas: int = DEFAULT_PRE_VERIFICATION_GAS,
    ) -> PackedUserOperation:
        """An unsigned owner operation running ``calls`` (``execute`` for one, ``executeBatch`` for more)."""
        if len(calls) == 1:
            c = calls[0]
            call_data = self.contract.encode_abi("execute", list(c.as_tuple()))
        else:
            call_data = self.contract.encode_abi("executeBatch", [[c.as_tuple() for c in calls]])
        return _build_op(
            self.w3,
            self.address,
            call_data,
            self.entry_point.get_nonce(self.address, nonce_key),
            verification_gas_limit=verification_gas_limit,
            call_gas_limit=call_gas_limit,
            pre_verification_gas=pre_verification_gas,
        )

    def sign_user_op(self, op: PackedUserOperation) -> PackedUserOperation:
        """Sign ``op`` with the owner key (the op must be this account's)."""
        if op.sender != self.address:
            raise SmartKeysError(f"refusing to sign an operation for {op.sender}: this owner is {self.address}")
        return sign_user_op(op, self._account, ENTRY_POINT_V08, self.chain_id)

    def send_user_op(self, calls: Sequence[Call], *, bundler: Bundler | BaseAccount) -> UserOpResult:
        """Build, sign and submit an owner operation; raises the decoded revert if the calls fail.

        ``bundler`` is a :class:`~smartkeys.bundler.Bundler`: :class:`~smartkeys.bundler.SelfBundler`
        (a funded account sends ``handleOps``; a bare account is taken as one) or a
        :class:`~smartkeys.bundler.BundlerClient` (see :meth:`_via_bundler`).
        """
        from smartkeys.bundler import as_bundler

        way_out = as_bundler(bundler)
        with lane_lock(self.chain_id, self.address, 0, cross_process=shared_chain(self.w3)), \
                _typed_chain_errors(self.w3):
            return way_out._submit_owner_op(self, calls)

    def _self_bundled(self, calls: Sequence[Call], bundler: SelfBundler) -> UserOpResult:
        """Sign an owner operation and send it in a ``handleOps`` transaction from ``bundler``'s account,
        exactly once through :attr:`outbox` (when the owner has one)."""
        guard = IntentGuard(self.w3, self.outbox, chain_id=self.chain_id, account=self.address,
                            signer=self.address, session_id=None, calls=calls, name=None)
        with guard.exclusive():
            guard.check_prior()
            op = self.sign_user_op(self.build_user_op(calls))
            return _guarded_handle_ops(self.w3, self.entry_point, guard, op, bundler).raise_for_failure()

    def _via_bundler(self, calls: Sequence[Call], client: BundlerClient) -> UserOpResult:
        """Estimate with the bundler (dummy signature), sign, ``eth_sendUserOperation``, wait for the receipt,
        under the owner's intent lock (:meth:`IntentGuard.exclusive`); see :meth:`_via_bundler_guarded`."""
        guard = IntentGuard(self.w3, self.outbox, chain_id=self.chain_id, account=self.address, signer=self.address,
                            session_id=None, calls=calls, name=None)
        with guard.exclusive():
            return self._via_bundler_guarded(calls, client, guard)

    def _via_bundler_guarded(self, calls: Sequence[Call], client: BundlerClient, guard: IntentGuard) -> UserOpResult:
        """Estimate with the bundler (dummy signature), sign, ``eth_sendUserOperation``, wait for the receipt.

        If this EOA does not delegate to the implementation yet, the op carries the EIP-7702 authorization
        (``eip7702Auth``, initCode marker ``0x7702``): the bundler's type-4 bundle delegates the account and
        runs the op in one transaction, paid from the account's own ether (its prefund).
        """
        client.check_compatible(self.chain_id, ENTRY_POINT_V08)  # before anything is signed for it
        op = self.build_user_op(calls, call_gas_limit=0)
        auth = None
        if self.delegation() != self.implementation:
            # the bundler sends the type-4 bundle: the authorization carries this EOA's own (pending) nonce
            auth = sign_authorization(self._account, self.implementation, self.chain_id,
                                      authorization_nonce(self._pending_nonce(), self_sponsored=False))
            op = op.replace(factory=EIP7702_FACTORY, eip7702_auth=auth)
        op = client.estimate_user_operation_gas(op.replace(signature=DUMMY_SIGNATURE)).apply(op)
        signed = sign_user_op(op, self._account, ENTRY_POINT_V08, self.chain_id)
        from smartkeys.bundler import BundlerUserOperationError, _wire_op

        guard.check_prior(bundler=client)
        if auth is not None:
            self._check_auth_nonce(auth, None, self.implementation)
        op_hash = user_op_hash(signed, ENTRY_POINT_V08, self.chain_id)
        guard.record(kind="user_op", hash=op_hash, sender=self.address, nonce=op.nonce, via="bundler",
                     payload={"op": _wire_op(signed)})
        landed = None
        try:
            client.send_user_operation(signed)
            receipt = client.wait_for_receipt(op_hash)
        except BundlerUserOperationError as exc:
            landed = guard.refused(exc, bundler=client)
            if landed is None:
                raise
        except transport_faults() as exc:
            landed = guard.unknown(exc, bundler=client)
        if landed is not None:
            result = _result_from_intent(landed)
            guard.done(landed.status, transaction_hash=landed.transaction_hash, gas_used=landed.gas_used)
            return result.raise_for_failure()
        guard.done(LANDED if receipt.success else REVERTED, transaction_hash=receipt.transaction_hash,
                   gas_used=receipt.actual_gas_used)
        result = UserOpResult(
            user_op_hash=receipt.user_op_hash, sender=receipt.sender, nonce=receipt.nonce, success=receipt.success,
            actual_gas_cost=receipt.actual_gas_cost, actual_gas_used=receipt.actual_gas_used,
            transaction_hash=receipt.transaction_hash or b"",
            bundle_gas_used=parse_quantity(receipt.receipt.get("gasUsed", 0), "receipt.gasUsed"),
            revert=receipt.revert(),
        )
        return result.raise_for_failure()


class SessionAgent:
    """An agent acting with a session key under a granted policy.

    The key never leaves this object: it is not in its repr, and only signatures are produced.
    With a ``journal`` (:class:`~smartkeys.journal.RefusalJournal`), every refusal -- by the preflight or
    by the chain (a reverted estimate, a failed operation) -- is recorded there before it is raised.
    Every signed use is recorded in the ``outbox`` (:class:`~smartkeys.outbox.Outbox`, fsync-ed) before it
    is sent, so that a crash or a network fault can be settled without paying twice (:meth:`settle`); see
    :meth:`batch` for what a retry of the same intent does. ``outbox``: ``True`` (the default) is
    ``Outbox()``, i.e. ``$SMARTKEYS_HOME/outbox.jsonl`` (``~/.smartkeys/outbox.jsonl``; the CLI's file, next
    to the refusal journal); an :class:`~smartkeys.outbox.Outbox` uses that file; ``None`` or ``False``
    records nothing: **unsafe under faults** -- a fault after sending is still looked up by hash, but a
    crash loses the intent and a retry of it after a crash or an unknown outcome may pay twice.
    The low-level :meth:`send_direct` and :meth:`send_user_op` go through the same outbox.
    """

    def __init__(
        self,
        w3: Web3,
        account: str,
        key: BaseAccount | SessionKey,
        policy: SessionPolicy,
        *,
        chain_id: int | None = None,
        journal: RefusalJournal | None = None,
        outbox: Outbox | bool | None = True,
    ) -> None:
        from smartkeys.signers import as_signer

        key = as_signer(key, "key")  # a LocalAccount (fast path), a SessionKey, or any BaseAccount adapter
        if key.address != policy.key:
            raise SmartKeysError(f"the session key {key.address} is not the policy's key {policy.key}")
        self.w3 = w3
        self.chain_id = check_chain_id(w3, chain_id)
        self.account = Web3.to_checksum_address(account)
        self.policy = policy
        self._key = key
        self.contract = account_contract(w3, self.account)
        self.entry_point = EntryPoint(w3)
        self.nonce_key = nonce_key_for(key.address)
        self.journal = journal
        self.outbox: Outbox | None = _resolve_outbox(outbox)

    def __repr__(self) -> str:
        return f"SessionAgent(account={self.account}, key={self._key.address}, session={self.session_id.hex()[:12]}…)"

    @property
    def key_address(self) -> str:
        return self._key.address

    @property
    def session_id(self) -> bytes:
        return self.policy.session_id

    def call_data(self, calls: Sequence[Call]) -> bytes:
        """``executeAsSession(policy, calls)`` calldata."""
        return self.contract.encode_abi("executeAsSession", [self.policy.encode(), [c.as_tuple() for c in calls]])

    def send_direct(self, calls: Sequence[Call], *, gas: int | None = None, intent: str | None = None,
                    repeat: bool = False):
        """Act with a transaction sent (and paid) by the session key's own address; returns its receipt.

        Low level: no preflight (the contract alone decides; a reverting estimate raises its decoded error,
        a mined failure :class:`~smartkeys.errors.TransactionFailedError`). Exactly once all the same, as
        :meth:`batch`: the signed transaction goes to :attr:`outbox` before it is sent, a fault after sending
        is settled by hash or raises :class:`~smartkeys.errors.OutcomeUnknownError`, and a retry of an intent
        that landed or may land raises :class:`~smartkeys.errors.DuplicateIntentError` (``intent`` names it).
        :class:`~smartkeys.errors.NotDelegatedError` (nothing sent) if the account does not run smartkeys: a
        transaction to an EOA without code would succeed and do nothing. ``repeat``: as in :meth:`batch`."""
        self._require_smartkeys()
        calls = [c if isinstance(c, Call) else Call(c[0], c[1], c[2]) for c in calls]
        guard = self._guard(calls, intent, None, repeat)
        with self._journaled(calls, "direct"), guard.exclusive(), \
                lane_lock(self.chain_id, self._key.address, kind="tx", cross_process=shared_chain(self.w3)):
            guard.check_prior()
            return _guarded_transaction(self.w3, guard, self._key, {"to": self.account, "data": self.call_data(calls)},
                                        gas=gas)

    def _require_smartkeys(self) -> None:
        from smartkeys.delegation import require_smartkeys

        require_smartkeys(self.w3, self.account, action=f"use session 0x{self.session_id.hex()}")

    @contextmanager
    def _journaled(self, calls: Sequence[Any], path: str) -> Iterator[None]:
        """Record a refusal (a decoded revert, a failed transaction or operation) in the journal, then re-raise."""
        try:
            yield
        except (RevertError, UserOperationError, TransactionFailedError) as exc:
            self.humanize(exc)
            if self.journal is not None:
                self._record_refusal(calls, exc, path)
            raise

    def units(self):
        """The :class:`smartkeys.refusals.Units` of this session (token symbols and decimals read once)."""
        from smartkeys.refusals import units_for_policy

        cached = getattr(self, "_units", None)
        if cached is None:
            cached = self._units = units_for_policy(self.w3, self.policy)
        return cached

    def name_functions(self, *signatures: str) -> None:
        """Let refusals name these functions (``"mint(address,uint256)"``) instead of their selectors; the
        common ERC-20 ones are known already."""
        from smartkeys.refusals import units_for_policy

        self._units = units_for_policy(self.w3, self.policy, signatures=signatures)

    def name_addresses(self, names: Mapping[str, str]) -> None:
        """Let refusals name addresses (``{"0x…": "treasury"}``, e.g. the policy file's address book:
        :meth:`smartkeys.policy.PolicyModel.address_names`): a recipient outside the session's list is then
        refused as "to = 0x… … use one of shop, treasury"."""
        units = self.units()
        self._units = dataclasses.replace(units, names={**units.names, **{checked_address(a, "names"): str(n)
                                                                           for a, n in names.items()}})

    def humanize(self, exc: BaseException) -> BaseException:
        """Put the refusal in the policy's units into ``str(exc)`` (what was asked, what is left, what to do:
        :func:`smartkeys.refusals.explain`); the class and its fields (``exc.spent``, ``exc.cap``) are kept.
        Errors it does not know are left as they are. Returns ``exc``."""
        from smartkeys.refusals import explain

        try:
            now = int(self.w3.eth.get_block("latest")["timestamp"]) + 1
        except Exception:  # noqa: BLE001 - the RPC may be what failed
            now = None
        text = explain(exc, self.units(), now=now)
        if text is None:
            return exc
        if isinstance(exc, TransactionFailedError):
            tx = getattr(exc, "tx_hash", None)
            tx_text = ("0x" + bytes(tx).hex()) if isinstance(tx, (bytes, bytearray)) else str(tx or "")
            text = f"the transaction {tx_text} was mined but the account refused it: {text}"
        Exception.__init__(exc, text)
        return exc

    def _record_refusal(self, calls: Sequence[Any], exc: BaseException, path: str) -> None:
        block_number = block_time = None
        try:
            latest = self.w3.eth.get_block("latest")
            block_number, block_time = int(latest["number"]), int(latest["timestamp"]) + 1
        except Exception:  # noqa: BLE001 - the RPC may be what failed; record without block data
            pass
        try:
            self.journal.record(  # type: ignore[union-attr]
                chain_id=self.chain_id, account=self.account, session_id=self.session_id, key=self._key.address,
                calls=calls, error=exc, path=path, block_number=block_number, block_time=block_time,
            )
        except OSError as err:  # never hide the refusal itself behind a journal problem
            import warnings

            from smartkeys.journal import JournalWarning

            warnings.warn(f"could not record the refusal in {self.journal}: {err}", JournalWarning, stacklevel=3)

    def build_user_op(
        self,
        calls: Sequence[Call],
        *,
        verification_gas_limit: int = DEFAULT_VERIFICATION_GAS,
        call_gas_limit: int | None = None,
        pre_verification_gas: int = DEFAULT_PRE_VERIFICATION_GAS,
        nonce: int | None = None,
    ) -> PackedUserOperation:
        """An unsigned session operation on this key's own nonce lane (no collisions between keys)."""
        if nonce is None:
            nonce = self.entry_point.get_nonce(self.account, self.nonce_key)
        return _build_op(
            self.w3,
            self.account,
            self.call_data(calls),
            nonce,
            verification_gas_limit=verification_gas_limit,
            call_gas_limit=call_gas_limit,
            pre_verification_gas=pre_verification_gas,
        )

    def sign_user_op(self, op: PackedUserOperation) -> PackedUserOperation:
        return sign_user_op(op, self._key, ENTRY_POINT_V08, self.chain_id)

    def send_user_op(self, calls: Sequence[Call], *, bundler: SelfBundler | BaseAccount,
                     intent: str | None = None, repeat: bool = False) -> UserOpResult:
        """Build, sign with the session key and self-bundle; raises the decoded revert if the calls fail.

        ``bundler``: a :class:`~smartkeys.bundler.SelfBundler` or the account it wraps (sends ``handleOps``).
        Low level (no preflight), exactly once as :meth:`send_direct`: the signed operation goes to
        :attr:`outbox` before the bundle is sent, a fault after sending is settled by its userOpHash."""
        from smartkeys.bundler import SelfBundler

        self._require_smartkeys()
        if not isinstance(bundler, SelfBundler):
            bundler = SelfBundler(bundler)
        calls = [c if isinstance(c, Call) else Call(c[0], c[1], c[2]) for c in calls]
        guard = self._guard(calls, intent, None, repeat)
        with self._journaled(calls, "user_op"), guard.exclusive(), \
                lane_lock(self.chain_id, self.account, self.nonce_key, cross_process=shared_chain(self.w3)):
            guard.check_prior()
            op = self.sign_user_op(self.build_user_op(calls))
            return _guarded_handle_ops(self.w3, self.entry_point, guard, op, bundler).raise_for_failure()

    # -- high level: preflight, then submit -----------------------------------------------

    def session_state(self) -> SessionState:
        """The session's on-chain counters (:func:`smartkeys.preflight.read_session_state`)."""
        from smartkeys.preflight import read_session_state

        return read_session_state(self.w3, self.account, self.policy)

    def call(
        self,
        target: str,
        data: bytes | str = b"",
        value: int = 0,
        *,
        via: str = "user_op",
        bundler: Bundler | BaseAccount | None = None,
        expected_outflows: Mapping[str, int] | None = None,
        raise_on_failure: bool = True,
        intent: str | None = None,
        on_submit: Callable[[Intent], None] | None = None,
        repeat: bool = False,
    ) -> AgentReceipt:
        """One call through the account; see :meth:`batch`."""
        # Call.__post_init__ turns hex text into bytes
        call = Call(checked_address(target, "target"), checked_uint(value, "value"), cast(bytes, data))
        return self.batch([call], via=via, bundler=bundler, expected_outflows=expected_outflows,
                          raise_on_failure=raise_on_failure, intent=intent, on_submit=on_submit, repeat=repeat)

    def transfer(
        self,
        token: str,
        to: str,
        amount: int,
        *,
        via: str = "user_op",
        bundler: Bundler | BaseAccount | None = None,
        raise_on_failure: bool = True,
        intent: str | None = None,
        on_submit: Callable[[Intent], None] | None = None,
        repeat: bool = False,
    ) -> AgentReceipt:
        """ERC-20 ``token.transfer(to, amount)`` from the account (``amount`` in base units); see :meth:`batch`."""
        from eth_abi import encode as abi_encode

        token = checked_address(token, "token")
        to = checked_address(to, "to")
        amount = checked_uint(amount, "amount")
        data = _TRANSFER_SELECTOR + abi_encode(["address", "uint256"], [to, amount])
        return self.batch([Call(token, 0, data)], via=via, bundler=bundler, raise_on_failure=raise_on_failure,
                          intent=intent, on_submit=on_submit, repeat=repeat)

    def batch(
        self,
        calls: Sequence[Call | tuple[str, int, bytes]],
        *,
        via: str = "user_op",
        bundler: Bundler | BaseAccount | None = None,
        expected_outflows: Mapping[str, int] | None = None,
        raise_on_failure: bool = True,
        intent: str | None = None,
        on_submit: Callable[[Intent], None] | None = None,
        repeat: bool = False,
    ) -> AgentReceipt:
        """Preflight ``calls`` against the session's on-chain state, then submit them as one session use.

        1. The session state is read from chain and :func:`smartkeys.preflight.preflight` runs with
           ``now`` = latest block timestamp + 1 (and, on the user-op path, the op's ``max_gas_cost()``): a
           refusal raises the contract's typed error before anything is signed or sent.
        2. ``via="direct"``: a transaction from the session key (:meth:`send_direct`; the key pays gas).
           ``via="user_op"``: ``bundler`` is a :class:`~smartkeys.bundler.Bundler`:
           :class:`~smartkeys.bundler.SelfBundler` (a funded account sends ``handleOps``; a bare account is
           taken as one) or :class:`~smartkeys.bundler.BundlerClient` (estimate, sign,
           ``eth_sendUserOperation``, wait).
        3. Returns an :class:`AgentReceipt`. A mined use whose calls reverted raises the decoded revert
           unless ``raise_on_failure`` is False (the receipt then has ``success=False``).

        Exactly once (:mod:`smartkeys.outbox`): the user-op hash (or the signed transaction's hash) is known
        before anything is sent; with an ``outbox`` the signed intent is recorded there first, and
        ``on_submit(intent)`` is called (to show the hash) before it leaves the process. A fault after
        sending is settled at once (the hash looked up, the same signed payload re-sent if its nonce is
        free); if that cannot decide, :class:`~smartkeys.errors.OutcomeUnknownError` is raised with the hash:
        do not send again, settle it (:meth:`settle`). ``intent`` names the intent (an idempotency key):
        a named intent that landed is never sent again; an unnamed one is identified by its calls, and a
        retry of one whose outcome was never reported (a crash, an unknown outcome) is settled first and
        refused with :class:`~smartkeys.errors.DuplicateIntentError` if it landed. One that :meth:`settle`
        found landed after an unknown outcome keeps refusing a retry of the same calls for
        ``outbox.hold_settled_for`` seconds (24 h by default): to pay the same thing again on purpose, name
        it (``intent="..."``) or pass ``repeat=True``. The duplicate check and the record of an intent hold
        the signer's intent lock (threads and processes; :meth:`IntentGuard.exclusive`), so one intent sent
        on both paths at once is sent once.

        Thread and process safety: uses of one nonce lane (this key's user-op lane, or a sending EOA) are
        serialized across threads and processes (:func:`smartkeys.locks.lane_lock`); a conflict with a
        sender elsewhere raises the retryable :class:`~smartkeys.errors.NonceConflictError`.
        Network faults raise :class:`~smartkeys.errors.NetworkError` subclasses (typed, with the fix).
        """
        if via not in ("user_op", "direct"):
            raise InvalidInputError("via", via, "'user_op' or 'direct'")
        if not calls:
            raise InvalidInputError("calls", [], "at least one call")
        calls = [c if isinstance(c, Call) else Call(c[0], c[1], c[2]) for c in calls]
        if via == "direct":
            if bundler is not None:
                raise InvalidInputError("bundler", type(bundler).__name__, "None on the direct path",
                                        "the session key sends (and pays for) direct transactions itself")
            guard = self._guard(calls, intent, on_submit, repeat)
            with self._journaled(calls, "direct"), _typed_chain_errors(self.w3), guard.exclusive():
                return self._direct(calls, expected_outflows, raise_on_failure, guard)
        from smartkeys.bundler import as_bundler

        way_out = as_bundler(bundler)
        guard = self._guard(calls, intent, on_submit, repeat)
        with self._journaled(calls, "user_op"), _typed_chain_errors(self.w3), guard.exclusive():
            return way_out._submit_session_op(self, calls, expected_outflows, raise_on_failure, guard)

    def _preflight(self, calls: Sequence[Call], *, via_user_op: bool, op: PackedUserOperation | None,
                   expected_outflows: Mapping[str, int] | None, state: SessionState | None = None,
                   now: int | None = None) -> Charges:
        from smartkeys.preflight import preflight

        return preflight(
            self.policy, state or self.session_state(), calls, now=now or _next_timestamp(self.w3),
            via_user_op=via_user_op,
            max_gas_cost=op.max_gas_cost() if op is not None else None,
            expected_outflows=expected_outflows, sender=None if via_user_op else self._key.address,
        )

    def _guard(self, calls, intent: str | None, on_submit, repeat: bool = False) -> IntentGuard:
        if intent is not None and (not isinstance(intent, str) or not intent.strip() or intent.startswith("auto:")):
            raise InvalidInputError("intent", intent, "a non-empty name (not starting with 'auto:')",
                                    "name the intent, e.g. intent='invoice-42', or leave it out")
        return IntentGuard(self.w3, self.outbox, chain_id=self.chain_id, account=self.account,
                           signer=self._key.address, session_id=self.session_id, calls=calls, name=intent,
                           on_submit=on_submit, repeat=repeat is True)

    def _direct(self, calls, expected_outflows, raise_on_failure, guard: IntentGuard) -> AgentReceipt:
        from smartkeys.tx import prepare_transaction

        with lane_lock(self.chain_id, self._key.address, kind="tx", cross_process=shared_chain(self.w3)):
            guard.check_prior()
            charges = self._preflight(calls, via_user_op=False, op=None, expected_outflows=expected_outflows)
            tx, signed = prepare_transaction(self.w3, self._key, {"to": self.account, "data": self.call_data(calls)})
            guard.record(kind="transaction", hash=bytes(signed.hash), sender=self._key.address, nonce=int(tx["nonce"]),
                         via="direct", payload={"raw": "0x" + bytes(signed.raw_transaction).hex()})
            receipt = self._broadcast_and_wait(signed, guard)
        if receipt is None:  # settled from the chain after a fault: it landed
            landed = guard.intent
            assert landed is not None
            # reported now (a receipt or the failure below): acknowledged, so the same calls are a new payment
            guard.done(landed.status, transaction_hash=landed.transaction_hash, block_number=landed.block_number,
                       gas_used=landed.gas_used)
            if raise_on_failure and landed.status != LANDED:
                raise TransactionFailedError(tx_hash=landed.transaction_hash)
            return AgentReceipt("direct", landed.transaction_hash or b"", None, landed.status == LANDED,
                                int(landed.gas_used or 0), charges)
        ok = receipt["status"] == 1
        guard.done(LANDED if ok else REVERTED, transaction_hash=bytes(receipt["transactionHash"]),
                   block_number=int(receipt["blockNumber"]), gas_used=int(receipt["gasUsed"]))
        if raise_on_failure and not ok:
            from smartkeys.tx import _replay_revert

            raise TransactionFailedError(tx_hash=receipt["transactionHash"], receipt=receipt,
                                         revert=_replay_revert(self.w3, tx, receipt))
        return AgentReceipt("direct", bytes(receipt["transactionHash"]), None, ok, int(receipt["gasUsed"]), charges)

    def _broadcast_and_wait(self, signed, guard: IntentGuard):
        """Send a signed transaction and wait; a fault is settled by hash (None: it landed, see guard.intent)."""
        from smartkeys.rpc import bounded_timeout

        try:
            self.w3.eth.send_raw_transaction(signed.raw_transaction)
        except transport_faults() as exc:
            text = str(exc).lower()
            if "already known" in text or "already imported" in text:
                pass  # this very transaction is in the pool already
            elif is_nonce_refusal(exc):
                guard.refused(exc)
                return None
            elif is_certain_refusal(exc):  # the node refused it (e.g. insufficient funds): it never spread
                guard.not_sent(str(exc))
                raise refusal_error(exc, hash=bytes(signed.hash)) from exc
            else:  # anything else after the request left (a gateway's error too): settled by hash
                guard.unknown(exc)
                return None
        try:
            return self.w3.eth.wait_for_transaction_receipt(
                signed.hash, timeout=bounded_timeout(120, "waiting for a receipt"), poll_latency=0.02)
        except transport_faults() as exc:
            guard.unknown(exc)
            return None

    def _provisional_op(self, calls, nonce: int, expected_outflows) -> tuple[PackedUserOperation, SessionState, int]:
        """Preflight with a lower-bound op (no call gas) before estimating anything.

        Returns that op, and the state and time used, for the final preflight once the gas limits are known.
        """
        state, now = self.session_state(), _next_timestamp(self.w3)
        op = self.build_user_op(calls, nonce=nonce, call_gas_limit=0)
        self._preflight(calls, via_user_op=True, op=op, expected_outflows=expected_outflows, state=state, now=now)
        return op, state, now

    def _self_bundled(self, calls, bundler: SelfBundler, expected_outflows, raise_on_failure,
                      guard: IntentGuard) -> AgentReceipt:
        with lane_lock(self.chain_id, self.account, self.nonce_key, cross_process=shared_chain(self.w3)):
            guard.check_prior()
            nonce = self.entry_point.get_nonce(self.account, self.nonce_key)
            _, state, now = self._provisional_op(calls, nonce, expected_outflows)
            op = self.build_user_op(calls, nonce=nonce)
            charges = self._preflight(calls, via_user_op=True, op=op, expected_outflows=expected_outflows,
                                      state=state, now=now)
            op = self.sign_user_op(op)
            op_hash = user_op_hash(op, ENTRY_POINT_V08, self.chain_id)

            def record(tx, signed) -> None:
                guard.record(kind="user_op", hash=op_hash, sender=self.account, nonce=nonce, via="self_bundled",
                             payload={"op": op.to_rpc(), "raw": "0x" + bytes(signed.raw_transaction).hex(),
                                      "tx_hash": "0x" + bytes(signed.hash).hex()})

            with lane_lock(self.chain_id, bundler.address, kind="tx", cross_process=shared_chain(self.w3)):
                try:
                    (result,) = bundler.handle_ops(self.entry_point, [op], on_signed=record)
                except transport_faults() as exc:
                    if guard.intent is None:  # failed before signing (a simulation refusal is typed; raise it)
                        raise
                    landed = _after_send_fault(guard, exc)
                    if landed is None:  # refused() returns None when exc is to be raised as is
                        raise
                    result = _result_from_intent(landed)
                except TransactionFailedError as exc:
                    # the bundle reverted on chain: another sender took the lane's nonce after our simulation
                    self._raise_if_lane_taken(guard, nonce, exc)
                    guard.done(REVERTED, transaction_hash=_bytes32(exc.tx_hash))
                    raise
                except UserOperationError as exc:  # the simulation refused the bundle: nothing was sent
                    if exc.code == "AA25":
                        raise NonceConflictError(sender=self.account, nonce=nonce, hash=op_hash,
                                                 detail="the bundle's simulation says the nonce is used") from exc
                    raise
        guard.done(LANDED if result.success else REVERTED, transaction_hash=result.transaction_hash,
                   gas_used=result.actual_gas_used)
        if raise_on_failure:
            result.raise_for_failure()
        return AgentReceipt("user_op", result.transaction_hash, result.user_op_hash, result.success,
                            result.actual_gas_used, charges)

    def _raise_if_lane_taken(self, guard: IntentGuard, nonce: int, exc: BaseException) -> None:
        from smartkeys.outbox import lookup

        if guard.intent is None:
            return
        found = lookup(self.w3, guard.intent)
        if found.status == DROPPED:
            guard.not_sent(found.note)
            raise NonceConflictError(sender=self.account, nonce=nonce, hash=guard.intent.hash,
                                     detail="another sender's operation took this nonce first") from exc

    def _via_bundler(self, calls, client: BundlerClient, expected_outflows, raise_on_failure,
                     guard: IntentGuard) -> AgentReceipt:
        from smartkeys.bundler import BundlerUserOperationError, _wire_op
        from smartkeys.rpc import bounded_timeout

        client.check_compatible(self.chain_id, ENTRY_POINT_V08)  # before anything is signed for it
        with lane_lock(self.chain_id, self.account, self.nonce_key, cross_process=shared_chain(self.w3)):
            guard.check_prior(bundler=client)
            nonce = self.entry_point.get_nonce(self.account, self.nonce_key)
            op, state, now = self._provisional_op(calls, nonce, expected_outflows)
            try:
                estimate = client.estimate_user_operation_gas(op.replace(signature=DUMMY_SIGNATURE))
            except UserOperationError as exc:
                if exc.code == "AA25":  # another sender of this key took the nonce: nothing was sent
                    raise NonceConflictError(sender=self.account, nonce=nonce,
                                             detail="the bundler's simulation says the nonce is used") from exc
                raise
            op = estimate.apply(op)
            charges = self._preflight(calls, via_user_op=True, op=op, expected_outflows=expected_outflows,
                                      state=state, now=now)
            op = self.sign_user_op(op)
            op_hash = user_op_hash(op, ENTRY_POINT_V08, self.chain_id)
            guard.record(kind="user_op", hash=op_hash, sender=self.account, nonce=nonce, via="bundler",
                         payload={"op": _wire_op(op)})
            landed = None
            try:
                client.send_user_operation(op)
            except BundlerUserOperationError as exc:
                if "already" in str(exc).lower() and "known" in str(exc).lower():
                    pass  # the bundler has this very operation: wait for it
                else:
                    landed = guard.refused(exc, bundler=client)
                    if landed is None:
                        raise
            except transport_faults() as exc:
                landed = guard.unknown(exc, bundler=client)
            if landed is None:
                try:
                    receipt = client.wait_for_receipt(op_hash, timeout=bounded_timeout(60, "waiting for the receipt"))
                except transport_faults() as exc:
                    landed = guard.unknown(exc, bundler=client)
        if landed is not None:
            success, tx_hash, gas_used = landed.status == LANDED, landed.transaction_hash or b"", int(landed.gas_used or 0)
            revert: SmartKeysError | None = (
                None if success else UserOperationError("the operation's calls reverted (settled from the chain)"))
        else:
            success, tx_hash, gas_used = receipt.success, receipt.transaction_hash or b"", receipt.actual_gas_used
            revert = receipt.revert()
        guard.done(LANDED if success else REVERTED, transaction_hash=tx_hash or None, gas_used=gas_used)
        if raise_on_failure and not success:
            raise revert or SmartKeysError(f"user operation 0x{op_hash.hex()} failed without a reason")
        return AgentReceipt("user_op", tx_hash, op_hash, success, gas_used, charges)

    # -- exactly once: settling ---------------------------------------------------------

    def pending(self) -> list[Intent]:
        """This key's intents in the outbox whose outcome was never reported (empty without an outbox)."""
        if self.outbox is None:
            return []
        return [i for i in self.outbox.unsettled(chain_id=self.chain_id) if i.signer == self._key.address]

    def settle(self, *, bundler: BundlerClient | None = None, wait: float = 10.0) -> list[Intent]:
        """Settle every pending intent of this key (:func:`smartkeys.outbox.settle`); returns them updated.

        Each is looked up by hash and nonce lane; one whose nonce is still free is re-sent unchanged (same
        hash: it can land once at most). Settled ones are acknowledged: their outcome is now reported.
        """
        from smartkeys.outbox import settle

        return [settle(self.w3, self.outbox, i, bundler=bundler, wait=wait, acknowledge=True) for i in self.pending()]


def _exactly_once(guard: IntentGuard, send: Callable[[], Any]) -> tuple[Any, Intent | None]:
    """Run ``send()`` (which calls ``guard.record`` once signed) and sort out a fault after signing: returns
    ``(result, None)``, or ``(None, landed intent)`` when the outcome was settled from the chain. A mined
    failure is recorded (reverted) and re-raised; a node refusal before the intent spread is recorded
    (dropped) and re-raised; an outcome that cannot be decided raises ``OutcomeUnknownError``."""
    try:
        return send(), None
    except TransactionFailedError as exc:
        guard.done(REVERTED, transaction_hash=_bytes32(exc.tx_hash))
        raise
    except transport_faults() as exc:
        if guard.intent is None:  # nothing was signed (an estimate's decoded refusal, a read that failed)
            raise
        landed = _after_send_fault(guard, exc)
        assert landed is not None
        return None, landed


def _after_send_fault(guard: IntentGuard, exc: BaseException) -> Intent | None:
    """Sort out an error raised after a signed transaction left the process (``guard.intent`` recorded).

    Only an answer that certainly means "refused, in no pool" (:func:`smartkeys._once.is_certain_refusal`:
    insufficient funds, an invalid signature...) is a refusal: recorded dropped and raised as
    :class:`~smartkeys.errors.TransactionRefusedError`. A nonce refusal is looked up (an earlier attempt of
    this very payload may have landed). Anything else -- a transport fault, a gateway's error object after
    the node took it, "already known" -- leaves the outcome unknown: settled by hash and nonce lane
    (:meth:`IntentGuard.unknown`). Returns the settled intent or None (refused() says raise ``exc``)."""
    intent = guard.intent
    assert intent is not None
    if is_nonce_refusal(exc):  # another sender used the nonce; ours may have landed before
        return guard.refused(exc)
    if is_certain_refusal(exc):
        guard.not_sent(str(exc))
        tx_hash = intent.payload.get("tx_hash") if intent.kind == "user_op" else intent.hash
        raise refusal_error(exc, hash=tx_hash) from exc
    return guard.unknown(exc)


def _guarded_transaction(w3: Web3, guard: IntentGuard, account: BaseAccount, tx: dict, *, gas: int | None = None):
    """:func:`~smartkeys.tx.send_transaction` through ``guard`` (recorded before sending; faults settled).
    The caller holds the sender's nonce lane lock and has run ``guard.check_prior()``. Returns the receipt."""

    def record(tx, signed) -> None:
        guard.record(kind="transaction", hash=bytes(signed.hash), sender=account.address, nonce=int(tx["nonce"]),
                     via="direct", payload={"raw": "0x" + bytes(signed.raw_transaction).hex()})

    receipt, landed = _exactly_once(guard, lambda: send_transaction(w3, account, tx, gas=gas, on_signed=record))
    if landed is not None:
        receipt = w3.eth.get_transaction_receipt(cast(Hash32, landed.transaction_hash))
        if int(receipt["status"]) != 1:
            guard.done(REVERTED, transaction_hash=bytes(receipt["transactionHash"]),
                       block_number=int(receipt["blockNumber"]), gas_used=int(receipt["gasUsed"]))
            raise TransactionFailedError(tx_hash=receipt["transactionHash"], receipt=receipt)
    guard.done(LANDED, transaction_hash=bytes(receipt["transactionHash"]),
               block_number=int(receipt["blockNumber"]), gas_used=int(receipt["gasUsed"]))
    return receipt


def _guarded_handle_ops(w3: Web3, entry_point: EntryPoint, guard: IntentGuard, op: PackedUserOperation,
                        bundler: SelfBundler) -> UserOpResult:
    """Self-bundle one signed ``op`` (``handleOps`` sent by ``bundler``'s account) through ``guard``; the caller holds
    the op's nonce lane lock and has run ``guard.check_prior()``. Returns its result (not raised)."""
    chain_id = guard.chain_id
    op_hash = user_op_hash(op, ENTRY_POINT_V08, chain_id)

    def record(tx, signed) -> None:
        guard.record(kind="user_op", hash=op_hash, sender=op.sender, nonce=op.nonce, via="self_bundled",
                     payload={"op": op.to_rpc(), "raw": "0x" + bytes(signed.raw_transaction).hex(),
                              "tx_hash": "0x" + bytes(signed.hash).hex()})

    def send() -> UserOpResult:
        with lane_lock(chain_id, bundler.address, kind="tx", cross_process=shared_chain(w3)):
            (result,) = bundler.handle_ops(entry_point, [op], on_signed=record)
        return result

    result, landed = _exactly_once(guard, send)
    if landed is not None:
        result = _result_from_intent(landed)
    guard.done(LANDED if result.success else REVERTED, transaction_hash=result.transaction_hash or None,
               gas_used=result.actual_gas_used)
    return result


def _resolve_outbox(outbox: Any) -> Outbox | None:
    """``True`` -> ``Outbox()`` (the default file); ``None`` / ``False`` -> no outbox; an ``Outbox`` as is."""
    from smartkeys.outbox import Outbox

    if outbox is True:
        return Outbox()
    if outbox is None or outbox is False:
        return None
    if isinstance(outbox, Outbox):
        return outbox
    raise InvalidInputError("outbox", type(outbox).__name__, "an Outbox, True (the default file) or None (unsafe)",
                            "leave it out to use $SMARTKEYS_HOME/outbox.jsonl, or pass Outbox(path)")


def _bytes32(value: Any) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    return bytes.fromhex(str(value).removeprefix("0x"))


def _result_from_intent(intent: Intent) -> UserOpResult:
    success = intent.status == LANDED
    return UserOpResult(
        user_op_hash=intent.hash, sender=intent.sender, nonce=intent.nonce, success=success, actual_gas_cost=0,
        actual_gas_used=int(intent.gas_used or 0), transaction_hash=intent.transaction_hash or b"", bundle_gas_used=0,
        revert=None if success else UserOperationError("the operation's calls reverted (settled from the chain)"),
    )


@contextmanager
def _typed_chain_errors(w3: Web3) -> Iterator[None]:
    """A contract read that returned nothing (web3's ``BadFunctionCallOutput``: no code at the address) is a
    :class:`~smartkeys.errors.ChainStateError`: the node lost its state, or the RPC is another chain."""
    import json

    import requests
    from web3.exceptions import BadFunctionCallOutput

    from smartkeys.errors import MalformedResponseError, NodeUnavailableError, RateLimitedError

    endpoint = getattr(w3.provider, "endpoint_uri", None)
    try:
        yield
    except BadFunctionCallOutput as exc:
        raise ChainStateError(f"a contract call returned no data ({str(exc)[:120]})", endpoint=endpoint) from None
    # any provider (not only smartkeys.rpc's): a raw transport fault is typed on the way out
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status == 429 and exc.response is not None:
            from smartkeys.rpc import retry_after_seconds

            raise RateLimitedError("the node answered HTTP 429", endpoint=endpoint, retry_after=retry_after_seconds(
                exc.response.headers.get("Retry-After"))) from exc
        raise NetworkError(f"the node answered HTTP {status}", endpoint=endpoint) from exc
    except (json.JSONDecodeError, requests.exceptions.ChunkedEncodingError) as exc:
        raise MalformedResponseError(f"the node sent a broken answer ({type(exc).__name__})", endpoint=endpoint) from exc
    except (requests.ConnectionError, requests.Timeout, ConnectionError) as exc:
        raise NodeUnavailableError(f"the node did not answer ({type(exc).__name__})", endpoint=endpoint) from exc


def delegation_change_since(w3: Web3, address: str, block: int, *, probes: int = 16) -> int | None:
    """A block after ``block`` at which ``address`` delegated elsewhere than it does now, or None if none seen.

    EIP-7702 code changes leave no log, and the account cannot tell that it was re-delegated (security.md,
    "sessions and delegation"); a session granted before such a change survives it. This reads the code at
    ``block``, at the latest block and at ``probes`` blocks evenly between (historical ``eth_getCode``), so it
    sees a change that is still in place, or that lasted past a probe; a brief change in between can be missed.
    Returns None, too, where the node keeps no state that old (a pruned node): the check is best effort.
    """
    latest = int(w3.eth.block_number)
    if block >= latest:
        return None
    try:
        now = bytes(w3.eth.get_code(cast(ChecksumAddress, address), block_identifier=latest))
        step = max((latest - block) // (probes + 1), 1)
        for b in range(block, latest, step):
            if bytes(w3.eth.get_code(cast(ChecksumAddress, address), block_identifier=b)) != now:
                return b
    except Exception:  # noqa: BLE001 - history unavailable (pruned node, provider limit): nothing seen
        return None
    return None


#: ERC-7201 namespace of the account's session storage (``SESSION_STORAGE_SLOT`` in SmartKeysAccount.sol):
#: ``epoch`` at the slot, ``status`` mapping at slot + 1, ``ledger`` mapping at slot + 2.
SESSION_STORAGE_SLOT = 0x85DECE25AB95DBA2DE628DD50D9C89670CE8C2BC2392E71AA090A7149BC2AE00


def _status_word(w3: Web3, account: str, session_id: bytes) -> int:
    """The raw status word of ``session_id`` (0 = never granted; revoking sets bit 255 and keeps the rest)."""
    slot = Web3.keccak(bytes(session_id) + (SESSION_STORAGE_SLOT + 1).to_bytes(32, "big"))
    return int.from_bytes(w3.eth.get_storage_at(cast(ChecksumAddress, account), int.from_bytes(slot, "big")), "big")


def choose_session(
    w3: Web3,
    account: str,
    key: BaseAccount | SessionKey,
    policies: Sequence[SessionPolicy],
    calls: Sequence[Call],
    *,
    via: str = "user_op",
    chain_id: int | None = None,
) -> SessionPolicy:
    """The first of ``policies`` (give the newest first) whose session is live and allows ``calls`` now.

    Each candidate is checked by :func:`smartkeys.preflight.preflight` against its on-chain counters (on the
    user-op path with the operation's lower-bound gas cost, as :meth:`SessionAgent.batch` does first), so a
    key holding a short, used-up session and a long one acts under the one that allows the action.
    One candidate: it is returned and its own refusal comes when it is used. Several, none allowing:
    :class:`~smartkeys.errors.NoSessionAllowsError` naming each one and why. Nothing is signed.
    """
    from smartkeys.errors import NoSessionAllowsError

    if not policies:
        raise InvalidInputError("policies", [], "at least one granted policy of this key",
                                "ask the owner to grant one (smartkeys grant --policy FILE)")
    if len(policies) == 1:
        return policies[0]
    refusals: list[tuple[bytes, BaseException]] = []
    for policy in policies:
        agent = SessionAgent(w3, account, key, policy, chain_id=chain_id)
        try:
            if via == "direct":
                agent._preflight(list(calls), via_user_op=False, op=None, expected_outflows=None)
            else:
                nonce = agent.entry_point.get_nonce(agent.account, agent.nonce_key)
                agent._provisional_op(list(calls), nonce, None)
        except (RevertError, UserOperationError) as exc:
            refusals.append((policy.session_id, agent.humanize(exc)))
            continue
        return policy
    raise NoSessionAllowsError(Web3.to_checksum_address(key.address), Web3.to_checksum_address(account),
                               refusals)


def session_status(w3: Web3, account: str, session_id: bytes) -> dict[str, Any]:
    """The on-chain status word of a session, decoded."""
    live, uses, native, gas, epoch = account_contract(w3, account).functions.sessionStatus(session_id).call()
    return {"live": live, "uses": uses, "native_spent": native, "gas_spent": gas, "granted_epoch": epoch}
