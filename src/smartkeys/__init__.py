"""smartkeys: scoped, expiring, revocable on-chain keys for AI agents (EIP-7702 + ERC-4337 v0.8).

The public API, re-exported here:

- owners: :class:`Owner` (delegate, execute, owner user ops, grant, revoke), :class:`Call`
- agents: :class:`SessionAgent` (preflight, then act through the account with a session key), :class:`AgentReceipt`
- status: :class:`SessionReport` (spent, cap and remaining per asset)
- policies: :class:`SessionPolicy`, :class:`Permission`, :class:`PermissionMode`, :class:`TokenCap`
- user operations: :class:`PackedUserOperation`, :func:`user_op_hash`, :func:`sign_user_op`,
  :class:`EntryPoint`, :class:`UserOpResult`
- EIP-7702: :func:`sign_authorization`
- local chain: :func:`start_local_chain`
- audit: :func:`build_audit` (rebuilt from on-chain events), :class:`AuditReport`, :class:`AuditThresholds`,
  :class:`RefusalJournal` (refusals the SDK saw)
- exactly once under faults: :class:`Outbox` (signed intents recorded before sending), :class:`OutcomeUnknownError`,
  :class:`DuplicateIntentError`, :class:`NonceConflictError`, :class:`NetworkError`
- errors: :class:`SmartKeysError` (root of every exception raised here); :class:`FileInputError` (a policy,
  configuration, keystore or journal file refused: not a regular file, too large, not UTF-8, nested too deep,
  YAML aliases, ... -- see :mod:`smartkeys.safe_files`)
"""

from smartkeys.account import AgentReceipt, Call, DelegationError, Owner, SessionAgent, SessionReport
from smartkeys.audit import AuditReport, AuditThresholds, build_audit
from smartkeys.authorization import sign_authorization
from smartkeys.deployments import ENTRY_POINT_V08, account_address
from smartkeys.entrypoint import EntryPoint, UserOpResult
from smartkeys.errors import (
    ChainMismatchError,
    ContractRevertError,
    DuplicateIntentError,
    InvalidInputError,
    NetworkError,
    NonceConflictError,
    OutcomeUnknownError,
    SmartKeysError,
    TransactionFailedError,
    UserOperationError,
)
from smartkeys.journal import RefusalJournal
from smartkeys.localchain import start_local_chain
from smartkeys.outbox import Outbox
from smartkeys.policy_codec import Permission, PermissionMode, SessionPolicy, TokenCap
from smartkeys.safe_files import FileInputError
from smartkeys.userop import PackedUserOperation, sign_user_op, user_op_hash

__version__ = "0.1.0"

__all__ = [
    "AgentReceipt",
    "AuditReport",
    "AuditThresholds",
    "Call",
    "ChainMismatchError",
    "ContractRevertError",
    "DelegationError",
    "DuplicateIntentError",
    "ENTRY_POINT_V08",
    "EntryPoint",
    "FileInputError",
    "InvalidInputError",
    "NetworkError",
    "NonceConflictError",
    "Outbox",
    "OutcomeUnknownError",
    "Owner",
    "PackedUserOperation",
    "Permission",
    "PermissionMode",
    "RefusalJournal",
    "SessionAgent",
    "SessionPolicy",
    "SessionReport",
    "SmartKeysError",
    "TokenCap",
    "TransactionFailedError",
    "UserOpResult",
    "UserOperationError",
    "account_address",
    "build_audit",
    "sign_authorization",
    "sign_user_op",
    "start_local_chain",
    "user_op_hash",
]
