"""Owner and agent clients for a smartkeys account (an EOA delegated to ``SmartKeysAccount``).

- :class:`Owner` holds the EOA's key: delegate / undelegate (EIP-7702), execute calls and batches, send
  owner user operations, grant and revoke sessions.
- :class:`SessionAgent` holds a session key and its policy: act through the account, as a direct
  transaction or as a user operation signed by the session key.

Both take a ``Web3`` first and check the RPC's chain id before signing anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from eth_account.signers.local import LocalAccount
from web3 import Web3

from smartkeys import artifacts
from smartkeys.authorization import authorization_nonce, sign_authorization
from smartkeys.deployments import ENTRY_POINT_V08, account_address
from smartkeys.encoding import nonce_key_for, parse_delegation
from smartkeys.entrypoint import EntryPoint, UserOpResult
from smartkeys.errors import SmartKeysError, register_contract_errors
from smartkeys.policy_codec import SessionPolicy
from smartkeys.tx import REVERT_EXCEPTIONS, check_chain_id, revert_data_of, send_transaction
from smartkeys.userop import EIP7702_FACTORY, PackedUserOperation, sign_user_op

__all__ = [
    "Call",
    "DelegationError",
    "Owner",
    "SessionAgent",
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


def account_contract(w3: Web3, address: str):
    """A web3 contract object for the smartkeys account at ``address`` (an EOA delegated to it)."""
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=_ACCOUNT_ABI)


def _fees(w3: Web3) -> tuple[int, int]:
    base = int(w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0)
    tip = 10**9
    return 2 * base + tip, tip


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
        except REVERT_EXCEPTIONS as exc:
            from smartkeys.errors import decode_revert

            raise decode_revert(revert_data_of(exc) or b"") from None
        call_gas_limit = int(estimate) + _CALL_GAS_MARGIN
    max_fee, tip = _fees(w3)
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

    def send_user_op(self, calls: Sequence[Call], *, bundler: LocalAccount) -> UserOpResult:
        """Build, sign and self-bundle an owner operation; raises the decoded revert if the calls fail."""
        op = self.sign_user_op(self.build_user_op(calls))
        (result,) = self.entry_point.handle_ops([op], bundler)
        return result.raise_for_failure()


class SessionAgent:
    """An agent acting with a session key under a granted policy.

    The key never leaves this object: it is not in its repr, and only signatures are produced.
    """

    def __init__(
        self,
        w3: Web3,
        account: str,
        key: LocalAccount,
        policy: SessionPolicy,
        *,
        chain_id: int | None = None,
    ) -> None:
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
        return send_transaction(self.w3, self._key, {"to": self.account, "data": self.call_data(calls)}, gas=gas)

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
        op = self.sign_user_op(self.build_user_op(calls))
        (result,) = self.entry_point.handle_ops([op], bundler)
        return result.raise_for_failure()


def session_status(w3: Web3, account: str, session_id: bytes) -> dict[str, Any]:
    """The on-chain status word of a session, decoded."""
    live, uses, native, gas, epoch = account_contract(w3, account).functions.sessionStatus(session_id).call()
    return {"live": live, "uses": uses, "native_spent": native, "gas_spent": gas, "granted_epoch": epoch}
