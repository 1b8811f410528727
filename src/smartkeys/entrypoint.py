"""The ERC-4337 EntryPoint v0.8 as seen from Python: nonces, on-chain hashes, self-bundled ``handleOps``.

Self-bundling means any funded EOA (the *bundler account*) submits ``handleOps`` directly, which is what a
local test, a script, or an agent without a bundler service does. The result of each operation is read back
from the EntryPoint's ``UserOperationEvent`` / ``UserOperationRevertReason`` logs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from eth_account.signers.base import BaseAccount
from web3 import Web3
from web3.types import BlockIdentifier

from smartkeys import artifacts
from smartkeys.deployments import ENTRY_POINT_V08
from smartkeys.errors import UserOperationError, decode_revert
from smartkeys.tx import send_transaction
from smartkeys.userop import PackedUserOperation

__all__ = ["EntryPoint", "UserOpResult"]


@dataclass(frozen=True)
class UserOpResult:
    """What happened to one user operation in a bundle."""

    user_op_hash: bytes
    sender: str
    nonce: int
    success: bool
    actual_gas_cost: int
    actual_gas_used: int
    transaction_hash: bytes
    bundle_gas_used: int
    revert: Exception | None = None

    def raise_for_failure(self) -> UserOpResult:
        """Raise the decoded execution revert if the operation's calls failed; return self otherwise."""
        if not self.success:
            if self.revert is not None:
                raise self.revert
            raise UserOperationError("the operation's execution reverted without data")
        return self


class EntryPoint:
    """Thin typed wrapper over the canonical EntryPoint v0.8 contract."""

    def __init__(self, w3: Web3, address: str = ENTRY_POINT_V08) -> None:
        self.w3 = w3
        self.address = Web3.to_checksum_address(address)
        self.contract = w3.eth.contract(address=self.address, abi=artifacts.load("vendor/EntryPoint")["abi"])

    def get_nonce(self, sender: str, key: int = 0, block: str | int = "pending") -> int:
        """The next full nonce (key << 64 | sequence) for ``sender`` on lane ``key``.

        Read at the ``pending`` block by default: an operation signed now is mined after whatever is already
        pending (on a node with block times, ``latest`` would give a nonce already used by a pending operation).
        """
        return int(self.contract.functions.getNonce(Web3.to_checksum_address(sender), key).call(
            block_identifier=cast(BlockIdentifier, block)))

    def get_user_op_hash(self, op: PackedUserOperation) -> bytes:
        """The EntryPoint's own hash of ``op`` (reads the 7702 delegate from chain)."""
        return bytes(self.contract.functions.getUserOpHash(op.to_abi_tuple()).call())

    def balance_of(self, account: str) -> int:
        """The account's deposit at the EntryPoint."""
        return int(self.contract.functions.balanceOf(Web3.to_checksum_address(account)).call())

    def handle_ops(
        self,
        ops: Sequence[PackedUserOperation],
        bundler: BaseAccount,
        *,
        beneficiary: str | None = None,
        gas: int | None = None,
        on_signed: Any = None,
    ) -> list[UserOpResult]:
        """Submit ``ops`` in one ``handleOps`` transaction sent by ``bundler``; return one result per op.

        Validation failures raise :class:`~smartkeys.errors.UserOperationError` (``FailedOp`` with its AAxx
        code) before anything is sent. Operations whose calls revert are mined; their result has
        ``success=False`` and ``revert`` set to the decoded reason. ``on_signed(tx, signed)``: see
        :func:`smartkeys.tx.send_transaction`. Unless ``gas`` is given, the bundle is simulated (estimated)
        right before it is signed: a bundle the simulation says reverts is never sent.
        """
        beneficiary = Web3.to_checksum_address(beneficiary or bundler.address)
        tx: dict[str, Any] = {
            "to": self.address,
            "data": self.contract.encode_abi("handleOps", [[op.to_abi_tuple() for op in ops], beneficiary]),
        }
        auths = [op.eip7702_auth for op in ops if op.eip7702_auth is not None]
        if auths:
            tx["authorizationList"] = auths
        receipt = send_transaction(self.w3, bundler, tx, gas=gas, on_signed=on_signed)
        return self._results(receipt)

    def _logs(self, receipt: Any, event_name: str) -> list[Any]:
        """Decoded EntryPoint ``event_name`` logs of ``receipt`` (other contracts' logs are skipped)."""
        event = getattr(self.contract.events, event_name)()
        topic = bytes(event.topic) if isinstance(event.topic, (bytes, bytearray)) else bytes.fromhex(
            str(event.topic).removeprefix("0x")
        )
        return [
            event.process_log(log)
            for log in receipt["logs"]
            if log["address"] == self.address and log["topics"] and bytes(log["topics"][0]) == topic
        ]

    def _results(self, receipt: Any) -> list[UserOpResult]:
        reverts: dict[bytes, Exception] = {}
        for log in self._logs(receipt, "UserOperationRevertReason"):
            reverts[bytes(log["args"]["userOpHash"])] = decode_revert(bytes(log["args"]["revertReason"]))
        results = []
        for log in self._logs(receipt, "UserOperationEvent"):
            args = log["args"]
            op_hash = bytes(args["userOpHash"])
            results.append(
                UserOpResult(
                    user_op_hash=op_hash,
                    sender=args["sender"],
                    nonce=int(args["nonce"]),
                    success=bool(args["success"]),
                    actual_gas_cost=int(args["actualGasCost"]),
                    actual_gas_used=int(args["actualGasUsed"]),
                    transaction_hash=bytes(receipt["transactionHash"]),
                    bundle_gas_used=int(receipt["gasUsed"]),
                    revert=reverts.get(op_hash),
                )
            )
        return results
