"""Owner and agent clients for a smartkeys account (an EOA delegated to ``SmartKeysAccount``).

- :class:`Owner` holds the EOA's key: delegate / undelegate (EIP-7702), execute calls and batches, send
  owner user operations, grant and revoke sessions.
- :class:`SessionAgent` holds a session key and its policy: act through the account, as a direct
  transaction or as a user operation signed by the session key.

Both take a ``Web3`` first and check the RPC's chain id before signing anything.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence

from eth_account.signers.local import LocalAccount
from web3 import Web3

from smartkeys import artifacts
from smartkeys.authorization import authorization_nonce, sign_authorization
from smartkeys.deployments import ENTRY_POINT_V08, account_address
from smartkeys.encoding import checked_address, checked_uint, nonce_key_for, parse_delegation, parse_quantity
from smartkeys.entrypoint import EntryPoint, UserOpResult
from smartkeys.errors import (
    InvalidInputError,
    RevertError,
    SmartKeysError,
    TransactionFailedError,
    UserOperationError,
    decode_revert,
    register_contract_errors,
)
from smartkeys.policy_codec import SessionPolicy
from smartkeys.tx import check_chain_id, revert_data_of, revert_exceptions, send_transaction, suggest_fees
from smartkeys.userop import DUMMY_SIGNATURE, EIP7702_FACTORY, PackedUserOperation, sign_user_op

if TYPE_CHECKING:  # preflight imports Call from this module: import it lazily at run time
    from smartkeys.bundler import BundlerClient
    from smartkeys.journal import RefusalJournal
    from smartkeys.keystore import SessionKey
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
]

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
_ACCOUNT_ABI = artifacts.load("SmartKeysAccount")["abi"]
register_contract_errors(_ACCOUNT_ABI)

#: Local defaults for self-bundled operations (a bundler's estimate replaces them when one is used).
DEFAULT_VERIFICATION_GAS = 150_000
DEFAULT_PRE_VERIFICATION_GAS = 50_000
_CALL_GAS_MARGIN = 25_000
_SPONSORED_CALL_GAS = 100_000


class DelegationError(SmartKeysError):
    """The set-code transaction was mined but the account's code is not what was asked.

    The chain skips an authorization silently when its nonce or chain id is wrong.
    """


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

    @property
    def in_window(self) -> bool:
        """True if a use at ``as_of + 1`` (the next block) falls inside the window."""
        return self.valid_after < self.as_of + 1 <= self.valid_until

    @property
    def uses_remaining(self) -> int | None:
        """Uses left, or None when unlimited."""
        return max(self.max_uses - self.uses, 0) if self.max_uses else None

    def asset(self, name: str) -> AssetReport:
        """The report of ``"native"``, ``"gas"`` or a token address."""
        if name not in ("native", "gas"):
            name = checked_address(name, "asset")
        for a in self.assets:
            if a.asset == name:
                return a
        raise InvalidInputError("asset", name, "'native', 'gas' or a capped token of the policy",
                                f"use one of {', '.join(a.asset for a in self.assets)}")


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
        policy.max_uses, tuple(assets), now,
    )


# In-process locks: one per sending EOA (its transaction nonce) and one per (account, nonce lane), so that
# threads sharing a bundler account or a session key never pick the same nonce.
_LOCKS: dict[tuple[Any, ...], threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(*key: Any) -> threading.Lock:
    with _LOCKS_GUARD:
        lock = _LOCKS.get(key)
        if lock is None:
            lock = _LOCKS[key] = threading.Lock()
        return lock


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
            estimate = w3.eth.estimate_gas({"from": ENTRY_POINT_V08, "to": sender, "data": call_data, "gasPrice": 0})
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

    >>> # owner = Owner(w3, eoa_account); owner.delegate(); owner.execute(token, 0, data)
    """

    def __init__(
        self,
        w3: Web3,
        account: LocalAccount,
        *,
        chain_id: int | None = None,
        implementation: str | None = None,
    ) -> None:
        self.w3 = w3
        self._account = account
        self.chain_id = check_chain_id(w3, chain_id)
        self.implementation = Web3.to_checksum_address(implementation or account_address())
        self.contract = account_contract(w3, account.address)
        self.entry_point = EntryPoint(w3)

    def __repr__(self) -> str:
        return f"Owner(address={self.address}, chain_id={self.chain_id})"

    @property
    def address(self) -> str:
        return self._account.address

    # -- EIP-7702 ---------------------------------------------------------------------

    def delegation(self) -> str | None:
        """The address this EOA's code delegates to, or None."""
        return parse_delegation(bytes(self.w3.eth.get_code(self.address)))

    def delegate(self, *, sponsor: LocalAccount | None = None, keep_sessions: bool = False):
        """Delegate this EOA to the smartkeys account with a set-code (type 4) transaction.

        Self-sponsored by default (the authorization then carries nonce + 1, since the sender's own nonce
        is bumped first); pass ``sponsor`` to have another account pay. Sessions granted during an earlier
        delegation survive in storage: unless ``keep_sessions`` is True they are revoked (``revokeAllSessions``)
        in the same transaction.
        """
        if not self.w3.eth.get_code(self.implementation):
            raise DelegationError(
                f"no smartkeys account code at {self.implementation} on chain {self.chain_id}; "
                "fix: deploy it first (scripts/deploy.py, or start_local_chain(deploy_smartkeys=True))"
            )
        data = b""
        if not keep_sessions and self._had_sessions():
            data = self.contract.encode_abi("revokeAllSessions", [])
        if data and sponsor is not None:
            # The sponsor's transaction cannot call owner-only functions itself; an owner-signed user op
            # in the same type-4 bundle keeps delegation and revocation atomic.
            receipt = self._delegate_and_call_sponsored(data, sponsor)
        else:
            receipt = self._set_code(self.implementation, sponsor, data)
        if self.delegation() != self.implementation:
            raise DelegationError(
                f"authorization skipped: {self.address} still delegates to {self.delegation()}; "
                "fix: check the chain id and the authority's nonce"
            )
        return receipt

    def undelegate(self, *, sponsor: LocalAccount | None = None):
        """Clear the EOA's code (delegate to the zero address). Storage, and so sessions, remain."""
        receipt = self._set_code(ZERO_ADDRESS, sponsor, b"")
        if self.delegation() is not None:
            raise DelegationError(f"authorization skipped: {self.address} still delegates to {self.delegation()}")
        return receipt

    def _set_code(self, delegate: str, sponsor: LocalAccount | None, data: bytes):
        nonce = self.w3.eth.get_transaction_count(self.address)
        auth = sign_authorization(
            self._account, delegate, self.chain_id, authorization_nonce(nonce, self_sponsored=sponsor is None)
        )
        tx = {"to": self.address, "data": data, "authorizationList": [auth]}
        return send_transaction(self.w3, sponsor or self._account, tx)

    def _delegate_and_call_sponsored(self, call_data: bytes, sponsor: LocalAccount):
        nonce = self.w3.eth.get_transaction_count(self.address)
        auth = sign_authorization(self._account, self.implementation, self.chain_id, nonce)
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
        (result,) = self.entry_point.handle_ops([op], sponsor)
        result.raise_for_failure()
        return self.w3.eth.get_transaction_receipt(result.transaction_hash)

    def _had_sessions(self) -> bool:
        """True if this account ever granted a session (it may be live again after re-delegation)."""
        event = self.contract.events.SessionGranted
        logs = self.w3.eth.get_logs(
            {"address": self.address, "fromBlock": 0, "toBlock": "latest", "topics": [event().topic]}
        )
        return bool(logs)

    # -- direct owner transactions ------------------------------------------------------

    def execute(self, target: str, value: int = 0, data: bytes = b""):
        """One call from the account, sent as a transaction from the EOA to itself."""
        return self._self_call(self.contract.encode_abi("execute", [Web3.to_checksum_address(target), value, data]))

    def execute_batch(self, calls: Iterable[Call]):
        """Several calls in one transaction; any failure reverts them all."""
        return self._self_call(self.contract.encode_abi("executeBatch", [[c.as_tuple() for c in calls]]))

    def grant(self, policy: SessionPolicy) -> bytes:
        """Grant ``policy`` on-chain; returns the session id (keccak256 of the packed policy)."""
        self._self_call(self.contract.encode_abi("grantSession", [policy.encode()]))
        return policy.session_id

    def revoke(self, session_id: bytes):
        """Revoke one session immediately."""
        return self._self_call(self.contract.encode_abi("revokeSession", [session_id]))

    def revoke_all(self):
        """Revoke every session granted so far (moves the epoch)."""
        return self._self_call(self.contract.encode_abi("revokeAllSessions", []))

    def _self_call(self, data: bytes):
        return send_transaction(self.w3, self._account, {"to": self.address, "data": data})

    # -- reports ------------------------------------------------------------------------

    def session_report(self, policy: SessionPolicy) -> SessionReport:
        """What the session of ``policy`` has used and has left, read from chain now."""
        from smartkeys.preflight import read_session_state

        if not isinstance(policy, SessionPolicy):
            raise InvalidInputError("policy", type(policy).__name__, "a SessionPolicy",
                                    "compile a PolicyModel first: model.compile(now)")
        state = read_session_state(self.w3, self.address, policy)
        return build_session_report(policy, state, int(self.w3.eth.get_block("latest")["timestamp"]))

    def granted_policies(self) -> list[SessionPolicy]:
        """Every policy this account ever granted (from its ``SessionGranted`` logs), oldest first, once each."""
        from smartkeys.policy import granted_policies

        return granted_policies(self.w3, self.address)

    def sessions(self) -> list[SessionReport]:
        """A :class:`SessionReport` for every session this account ever granted (revoked ones have live=False)."""
        return [self.session_report(p) for p in self.granted_policies()]

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

    def send_user_op(self, calls: Sequence[Call], *, bundler: LocalAccount | BundlerClient) -> UserOpResult:
        """Build, sign and submit an owner operation; raises the decoded revert if the calls fail.

        ``bundler`` is a funded ``LocalAccount`` (self-bundled ``handleOps``) or a
        :class:`~smartkeys.bundler.BundlerClient` (see :meth:`_via_bundler`).
        """
        from smartkeys.bundler import BundlerClient

        if isinstance(bundler, BundlerClient):
            return self._via_bundler(calls, bundler)
        op = self.sign_user_op(self.build_user_op(calls))
        (result,) = self.entry_point.handle_ops([op], bundler)
        return result.raise_for_failure()

    def _via_bundler(self, calls: Sequence[Call], client: BundlerClient) -> UserOpResult:
        """Estimate with the bundler (dummy signature), sign, ``eth_sendUserOperation``, wait for the receipt.

        If this EOA does not delegate to the implementation yet, the op carries the EIP-7702 authorization
        (``eip7702Auth``, initCode marker ``0x7702``): the bundler's type-4 bundle delegates the account and
        runs the op in one transaction, paid from the account's own ether (its prefund).
        """
        op = self.build_user_op(calls, call_gas_limit=0)
        if self.delegation() != self.implementation:
            nonce = self.w3.eth.get_transaction_count(self.address)
            auth = sign_authorization(self._account, self.implementation, self.chain_id, nonce)
            op = op.replace(factory=EIP7702_FACTORY, eip7702_auth=auth)
        op = client.estimate_user_operation_gas(op.replace(signature=DUMMY_SIGNATURE)).apply(op)
        op_hash = client.send_user_operation(sign_user_op(op, self._account, ENTRY_POINT_V08, self.chain_id))
        receipt = client.wait_for_receipt(op_hash)
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
    """

    def __init__(
        self,
        w3: Web3,
        account: str,
        key: LocalAccount | SessionKey,
        policy: SessionPolicy,
        *,
        chain_id: int | None = None,
        journal: RefusalJournal | None = None,
    ) -> None:
        from smartkeys.keystore import SessionKey

        if isinstance(key, SessionKey):
            key = key.account
        if not isinstance(key, LocalAccount):
            raise InvalidInputError("key", type(key).__name__, "an eth_account LocalAccount or a keystore.SessionKey",
                                    "load it with smartkeys.keystore.load_keystore() or load_key_from_env()")
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

    def send_direct(self, calls: Sequence[Call], *, gas: int | None = None):
        """Act with a transaction sent (and paid) by the session key's own address."""
        with self._journaled(calls, "direct"):
            return send_transaction(self.w3, self._key, {"to": self.account, "data": self.call_data(calls)},
                                    gas=gas)

    @contextmanager
    def _journaled(self, calls: Sequence[Any], path: str) -> Iterator[None]:
        """Record a refusal (a decoded revert, a failed transaction or operation) in the journal, then re-raise."""
        try:
            yield
        except (RevertError, UserOperationError, TransactionFailedError) as exc:
            if self.journal is not None:
                self._record_refusal(calls, exc, path)
            raise

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

    def send_user_op(self, calls: Sequence[Call], *, bundler: LocalAccount) -> UserOpResult:
        """Build, sign with the session key and self-bundle; raises the decoded revert if the calls fail."""
        with self._journaled(calls, "user_op"):
            op = self.sign_user_op(self.build_user_op(calls))
            (result,) = self.entry_point.handle_ops([op], bundler)
            return result.raise_for_failure()

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
        bundler: LocalAccount | BundlerClient | None = None,
        expected_outflows: Mapping[str, int] | None = None,
        raise_on_failure: bool = True,
    ) -> AgentReceipt:
        """One call through the account; see :meth:`batch`."""
        call = Call(checked_address(target, "target"), checked_uint(value, "value"), data)
        return self.batch([call], via=via, bundler=bundler, expected_outflows=expected_outflows,
                          raise_on_failure=raise_on_failure)

    def transfer(
        self,
        token: str,
        to: str,
        amount: int,
        *,
        via: str = "user_op",
        bundler: LocalAccount | BundlerClient | None = None,
        raise_on_failure: bool = True,
    ) -> AgentReceipt:
        """ERC-20 ``token.transfer(to, amount)`` from the account (``amount`` in base units); see :meth:`batch`."""
        from eth_abi import encode as abi_encode

        token = checked_address(token, "token")
        to = checked_address(to, "to")
        amount = checked_uint(amount, "amount")
        data = _TRANSFER_SELECTOR + abi_encode(["address", "uint256"], [to, amount])
        return self.batch([Call(token, 0, data)], via=via, bundler=bundler, raise_on_failure=raise_on_failure)

    def batch(
        self,
        calls: Sequence[Call | tuple[str, int, bytes]],
        *,
        via: str = "user_op",
        bundler: LocalAccount | BundlerClient | None = None,
        expected_outflows: Mapping[str, int] | None = None,
        raise_on_failure: bool = True,
    ) -> AgentReceipt:
        """Preflight ``calls`` against the session's on-chain state, then submit them as one session use.

        1. The session state is read from chain and :func:`smartkeys.preflight.preflight` runs with
           ``now`` = latest block timestamp + 1 (and, on the user-op path, the op's ``max_gas_cost()``): a
           refusal raises the contract's typed error before anything is signed or sent.
        2. ``via="direct"``: a transaction from the session key (:meth:`send_direct`; the key pays gas).
           ``via="user_op"``: ``bundler`` is a funded ``LocalAccount`` (self-bundled ``handleOps``) or a
           :class:`~smartkeys.bundler.BundlerClient` (estimate, sign, ``eth_sendUserOperation``, wait).
        3. Returns an :class:`AgentReceipt`. A mined use whose calls reverted raises the decoded revert
           unless ``raise_on_failure`` is False (the receipt then has ``success=False``).

        Thread safety: uses of one session key (one nonce lane) and transactions of one sending account are
        serialized in-process, so threads may share a key or a bundler account without nonce collisions.
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
            with self._journaled(calls, "direct"):
                return self._direct(calls, expected_outflows, raise_on_failure)
        from smartkeys.bundler import BundlerClient

        if isinstance(bundler, BundlerClient):
            with self._journaled(calls, "user_op"):
                return self._via_bundler(calls, bundler, expected_outflows, raise_on_failure)
        if isinstance(bundler, LocalAccount):
            with self._journaled(calls, "user_op"):
                return self._self_bundled(calls, bundler, expected_outflows, raise_on_failure)
        raise InvalidInputError("bundler", type(bundler).__name__,
                                "a funded LocalAccount (self-bundled) or a BundlerClient on the user-op path",
                                "pass bundler=..., or use via='direct'")

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

    def _direct(self, calls, expected_outflows, raise_on_failure) -> AgentReceipt:
        with _lock_for("eoa", self.chain_id, self._key.address):
            charges = self._preflight(calls, via_user_op=False, op=None, expected_outflows=expected_outflows)
            receipt = send_transaction(
                self.w3, self._key, {"to": self.account, "data": self.call_data(calls)},
                check_status=raise_on_failure,
            )
        return AgentReceipt("direct", bytes(receipt["transactionHash"]), None, receipt["status"] == 1,
                            int(receipt["gasUsed"]), charges)

    def _provisional_op(self, calls, nonce: int, expected_outflows) -> tuple[PackedUserOperation, SessionState, int]:
        """Preflight with a lower-bound op (no call gas) before estimating anything.

        Returns that op, and the state and time used, for the final preflight once the gas limits are known.
        """
        state, now = self.session_state(), _next_timestamp(self.w3)
        op = self.build_user_op(calls, nonce=nonce, call_gas_limit=0)
        self._preflight(calls, via_user_op=True, op=op, expected_outflows=expected_outflows, state=state, now=now)
        return op, state, now

    def _self_bundled(self, calls, bundler: LocalAccount, expected_outflows, raise_on_failure) -> AgentReceipt:
        with _lock_for("lane", self.chain_id, self.account, self.nonce_key):
            nonce = self.entry_point.get_nonce(self.account, self.nonce_key)
            _, state, now = self._provisional_op(calls, nonce, expected_outflows)
            op = self.build_user_op(calls, nonce=nonce)
            charges = self._preflight(calls, via_user_op=True, op=op, expected_outflows=expected_outflows,
                                      state=state, now=now)
            op = self.sign_user_op(op)
            with _lock_for("eoa", self.chain_id, bundler.address):
                (result,) = self.entry_point.handle_ops([op], bundler)
        if raise_on_failure:
            result.raise_for_failure()
        return AgentReceipt("user_op", result.transaction_hash, result.user_op_hash, result.success,
                            result.actual_gas_used, charges)

    def _via_bundler(self, calls, client: BundlerClient, expected_outflows, raise_on_failure) -> AgentReceipt:
        with _lock_for("lane", self.chain_id, self.account, self.nonce_key):
            nonce = self.entry_point.get_nonce(self.account, self.nonce_key)
            op, state, now = self._provisional_op(calls, nonce, expected_outflows)
            estimate = client.estimate_user_operation_gas(op.replace(signature=DUMMY_SIGNATURE))
            op = estimate.apply(op)
            charges = self._preflight(calls, via_user_op=True, op=op, expected_outflows=expected_outflows,
                                      state=state, now=now)
            op_hash = client.send_user_operation(self.sign_user_op(op))
            receipt = client.wait_for_receipt(op_hash)
        if raise_on_failure and not receipt.success:
            raise receipt.revert() or SmartKeysError(f"user operation 0x{op_hash.hex()} failed without a reason")
        return AgentReceipt("user_op", receipt.transaction_hash or b"", receipt.user_op_hash, receipt.success,
                            receipt.actual_gas_used, charges)


def session_status(w3: Web3, account: str, session_id: bytes) -> dict[str, Any]:
    """The on-chain status word of a session, decoded."""
    live, uses, native, gas, epoch = account_contract(w3, account).functions.sessionStatus(session_id).call()
    return {"live": live, "uses": uses, "native_spent": native, "gas_spent": gas, "granted_epoch": epoch}
