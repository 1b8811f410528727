"""smartkeys: scoped, expiring, revocable on-chain keys for AI agents (EIP-7702 + ERC-4337 v0.8).

The public API, re-exported here:

- owners: :class:`Owner` (delegate, execute, owner user ops, grant, revoke), :class:`Call`
- agents: :class:`SessionAgent` (preflight, then act through the account with a session key), :class:`AgentReceipt`
- status: :class:`SessionReport` (spent, cap and remaining per asset)
- policies: :class:`SessionPolicy`, :class:`Permission`, :class:`PermissionMode`, :class:`TokenCap`
- user operations: :class:`PackedUserOperation`, :func:`user_op_hash`, :func:`sign_user_op`,
  :class:`EntryPoint`, :class:`UserOpResult`
- EIP-7702: :func:`sign_authorization`
- signers and bundlers: any eth-account ``BaseAccount`` signs for an owner or an agent; :class:`JsonRpcSigner`
  (a remote signer: Web3Signer, Clef); ``bundler=`` takes :class:`SelfBundler` or ``bundler.BundlerClient``
- local chain: :func:`start_local_chain`
- audit: :func:`build_audit` (rebuilt from on-chain events), :class:`AuditReport`, :class:`AuditThresholds`,
  :class:`RefusalJournal` (refusals the SDK saw)
- exactly once under faults: :class:`Outbox` (signed intents recorded before sending), :class:`OutcomeUnknownError`,
  :class:`DuplicateIntentError`, :class:`NonceConflictError`, :class:`NetworkError`
- errors: :class:`SmartKeysError` (root of every exception raised here); :class:`FileInputError` (a policy,
  configuration, keystore or journal file refused: not a regular file, too large, not UTF-8, nested too deep,
  YAML aliases, ... -- see :mod:`smartkeys.safe_files`)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names below, for type checkers and IDEs; at run time they load on first use
    from smartkeys.account import AgentReceipt, Call, DelegationError, Owner, SessionAgent, SessionReport
    from smartkeys.audit import AuditReport, AuditThresholds, build_audit
    from smartkeys.authorization import sign_authorization
    from smartkeys.bundler import SelfBundler
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
    from smartkeys.signers import JsonRpcSigner
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
    "JsonRpcSigner",
    "NetworkError",
    "NonceConflictError",
    "Outbox",
    "OutcomeUnknownError",
    "Owner",
    "PackedUserOperation",
    "Permission",
    "PermissionMode",
    "RefusalJournal",
    "SelfBundler",
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

# Where each public name lives. ``import smartkeys`` loads none of these modules (web3, eth-account and
# py-evm take about a second to import); ``smartkeys.Owner`` imports its module on first access (PEP 562).
_LAZY: dict[str, str] = {
    "AgentReceipt": "account",
    "AuditReport": "audit",
    "AuditThresholds": "audit",
    "Call": "account",
    "ChainMismatchError": "errors",
    "ContractRevertError": "errors",
    "DelegationError": "account",
    "DuplicateIntentError": "errors",
    "ENTRY_POINT_V08": "deployments",
    "EntryPoint": "entrypoint",
    "FileInputError": "safe_files",
    "InvalidInputError": "errors",
    "JsonRpcSigner": "signers",
    "NetworkError": "errors",
    "NonceConflictError": "errors",
    "Outbox": "outbox",
    "OutcomeUnknownError": "errors",
    "Owner": "account",
    "PackedUserOperation": "userop",
    "Permission": "policy_codec",
    "PermissionMode": "policy_codec",
    "RefusalJournal": "journal",
    "SessionAgent": "account",
    "SessionPolicy": "policy_codec",
    "SelfBundler": "bundler",
    "SessionReport": "account",
    "SmartKeysError": "errors",
    "TokenCap": "policy_codec",
    "TransactionFailedError": "errors",
    "UserOpResult": "entrypoint",
    "UserOperationError": "errors",
    "account_address": "deployments",
    "build_audit": "audit",
    "sign_authorization": "authorization",
    "sign_user_op": "userop",
    "start_local_chain": "localchain",
    "user_op_hash": "userop",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        from importlib.util import find_spec

        if not name.startswith("_") and find_spec(f"smartkeys.{name}") is not None:
            return importlib.import_module(f"smartkeys.{name}")  # ``smartkeys.policy.load_policy`` keeps working
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"smartkeys.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
