"""Sending transactions: fill, preflight (estimate), sign locally, send, wait, and decode failures.

Every transaction is estimated before it is signed, so a call the chain would refuse raises a typed
exception (decoded from the revert data) and nothing is sent.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable
from typing import Any, cast

from eth_abi import encode as abi_encode
from eth_account.signers.base import BaseAccount
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError, ContractPanicError
from web3.types import TxParams

from smartkeys.errors import ChainMismatchError, SmartKeysError, TransactionFailedError, decode_revert

__all__ = [
    "REVERT_EXCEPTIONS",  # noqa: F822 - provided lazily by the module __getattr__
    "check_chain_id",
    "prepare_transaction",
    "revert_data_of",
    "revert_exceptions",
    "send_transaction",
    "suggest_fees",
]

_WEB3_REVERTS: tuple[type[Exception], ...] = (ContractCustomError, ContractLogicError, ContractPanicError)


def _eth_tester_reverted() -> type[Exception] | None:
    """eth-tester's ``TransactionFailed`` if eth-tester is loaded, else None.

    Importing eth-tester pulls in py-evm (~0.15 s); an embedded chain has always imported it before it can
    raise, so looking in ``sys.modules`` is enough and keeps ``import smartkeys`` free of both.
    """
    module = sys.modules.get("eth_tester.exceptions")
    return getattr(module, "TransactionFailed", None) if module is not None else None


def revert_exceptions() -> tuple[type[Exception], ...]:
    """Exceptions that mean "the EVM reverted" across web3 providers: web3's, plus eth-tester's once it is
    in use (``except revert_exceptions() as exc:``)."""
    reverted = _eth_tester_reverted()
    return _WEB3_REVERTS if reverted is None else (*_WEB3_REVERTS, reverted)


def __getattr__(name: str) -> Any:
    """``REVERT_EXCEPTIONS``: the same tuple as :func:`revert_exceptions`, with eth-tester's exception included
    (imported on first access, for callers that bind the tuple before any chain exists)."""
    if name == "REVERT_EXCEPTIONS":
        try:
            import eth_tester.exceptions  # noqa: F401
        except ImportError:  # pragma: no cover - eth-tester is a base dependency
            pass
        return revert_exceptions()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

_GAS_HEADROOM_NUM = 12  # estimate x 1.2 + a flat margin: estimates on 7702 paths can be tight
_GAS_HEADROOM_DEN = 10
_GAS_FLAT_MARGIN = 20_000
_DEFAULT_PRIORITY_FEE = 10**9
_ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")


def check_chain_id(w3: Web3, expected: int | None) -> int:
    """Return the RPC's chain id; raise ChainMismatchError if it differs from ``expected``."""
    actual = int(w3.eth.chain_id)
    if expected is not None and actual != int(expected):
        raise ChainMismatchError(expected=int(expected), actual=actual)
    return actual


def revert_data_of(exc: BaseException) -> bytes | None:
    """Raw revert data carried by a web3 or eth-tester exception, if any.

    eth-tester puts the revert in the message: ``b'...'`` (raw data, shown as a Python bytes literal) or,
    for ``Error(string)``, the decoded reason text, which is re-encoded here.
    """
    reverted = _eth_tester_reverted()
    if reverted is not None and isinstance(exc, reverted) and not isinstance(exc, ContractLogicError):
        return _eth_tester_revert_data(str(exc.args[0]) if exc.args else "")
    data: Any = getattr(exc, "data", None)
    if isinstance(data, dict):
        data = data.get("data")
    if data is None and exc.args:
        data = exc.args[-1] if isinstance(exc.args[-1], (str, bytes)) else None
    if isinstance(data, bytes):
        return data
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return None
    return None


def _eth_tester_revert_data(message: str) -> bytes:
    text = message.removeprefix("execution reverted: ")
    if text.startswith(("b'", 'b"')):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = None
        if isinstance(value, bytes):
            return value
    return _ERROR_STRING_SELECTOR + abi_encode(["string"], [text])


def suggest_fees(w3: Web3, tip: int = _DEFAULT_PRIORITY_FEE) -> tuple[int, int]:
    """``(max_fee_per_gas, max_priority_fee_per_gas)``: twice the latest base fee plus ``tip``."""
    base = int(w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0)
    return 2 * base + tip, tip


def _fees(w3: Web3, tx: dict) -> None:
    if "gasPrice" in tx:
        return
    max_fee, tip = suggest_fees(w3, int(tx.get("maxPriorityFeePerGas", _DEFAULT_PRIORITY_FEE)))
    tx.setdefault("maxPriorityFeePerGas", tip)
    tx.setdefault("maxFeePerGas", max_fee)


def prepare_transaction(w3: Web3, account: BaseAccount, tx: dict, *, gas: int | None = None) -> tuple[dict, Any]:
    """Fill ``tx`` (nonce, chain id, fees, gas) and sign it: ``(filled tx, signed)``. Nothing is sent.

    The estimate is the simulation: if it reverts, the decoded custom error is raised and nothing is signed.
    ``signed.hash`` is the transaction hash, known before anything leaves the process. ``account`` is any
    eth-account ``BaseAccount``; one that is not a ``LocalAccount`` (a hardware-wallet, KMS or remote-signer
    adapter) must return the very transaction asked, from its own address, else
    :class:`~smartkeys.errors.SignerResponseError` (:func:`smartkeys.signers.check_signed_transaction`).
    """
    tx = dict(tx)
    if tx.get("to"):
        tx["to"] = Web3.to_checksum_address(tx["to"])
    tx.setdefault("data", b"")
    tx.setdefault("from", account.address)
    tx.setdefault("chainId", int(w3.eth.chain_id))
    tx.setdefault("nonce", w3.eth.get_transaction_count(account.address, "pending"))
    tx.setdefault("value", 0)
    _fees(w3, tx)
    if gas is not None:
        tx["gas"] = gas
    elif "gas" not in tx:
        _require_funds(w3, tx, 21_000)  # an empty sender: say so before a node's estimate fails obscurely
        _preflight_call(w3, tx)
        try:
            estimate = _estimate_on_pending_block(w3, tx)
        except revert_exceptions() as exc:
            raise decode_revert(revert_data_of(exc) or b"") from None
        tx["gas"] = estimate * _GAS_HEADROOM_NUM // _GAS_HEADROOM_DEN + _GAS_FLAT_MARGIN
    _require_funds(w3, tx, int(tx["gas"]))
    signed = account.sign_transaction(tx)
    if not isinstance(account, LocalAccount):
        from smartkeys.signers import check_signed_transaction

        check_signed_transaction(account, tx, signed)
    return tx, signed


def _require_funds(w3: Web3, tx: dict, gas: int) -> None:
    """:class:`~smartkeys.errors.InsufficientFundsError` unless ``tx["from"]`` holds ``gas`` x max fee +
    value (the balance every node checks before accepting a transaction), so an unfunded sender gets the same
    typed "fund ADDRESS" error on every node instead of each client's own text (eth-tester's ValidationError)."""
    from smartkeys.errors import InsufficientFundsError

    fee = int(tx.get("maxFeePerGas", tx.get("gasPrice", 0)))
    required = gas * fee + int(tx.get("value", 0))
    if required == 0:
        return
    balance = int(w3.eth.get_balance(tx["from"], "pending"))
    if balance < required:
        raise InsufficientFundsError(tx["from"], balance, required)


def send_transaction(
    w3: Web3,
    account: BaseAccount,
    tx: dict,
    *,
    gas: int | None = None,
    check_status: bool = True,
    timeout: float = 120,
    on_signed: Callable[[dict, Any], None] | None = None,
):
    """Fill ``tx`` (nonce, chain id, fees, gas), sign it with ``account`` and wait for the receipt.

    Raises the decoded custom error (a :class:`~smartkeys.errors.SmartKeysError`) before sending if the
    estimate reverts, and :class:`TransactionFailedError` if the mined transaction failed anyway (unless
    ``check_status`` is False: then the failed receipt is returned). ``on_signed(tx, signed)`` runs after
    signing and before sending (to record the hash durably). ``timeout`` (seconds) is cut to the current
    :func:`smartkeys.rpc.deadline`.
    """
    from smartkeys.rpc import bounded_timeout

    tx, signed = prepare_transaction(w3, account, tx, gas=gas)
    if on_signed is not None:
        on_signed(tx, signed)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(
        tx_hash, timeout=bounded_timeout(timeout, "waiting for a receipt"), poll_latency=0.01)
    if check_status and receipt["status"] != 1:
        raise TransactionFailedError(tx_hash=tx_hash, receipt=receipt, revert=_replay_revert(w3, tx, receipt))
    return receipt


def _estimate_on_pending_block(w3: Web3, tx: dict) -> int:
    """``eth_estimateGas`` against the pending block where the node supports a block argument (anvil,
    geth), else the node's default (eth-tester, which has no block argument for it)."""
    try:
        return int(w3.eth.estimate_gas(cast(TxParams, tx), "pending"))
    except revert_exceptions():
        raise
    except Exception as exc:  # noqa: BLE001 - only "block argument unsupported" is expected here
        if "estimateGas" not in str(exc) and "not been implemented" not in str(exc) and not isinstance(exc, TypeError):
            raise
    return int(w3.eth.estimate_gas(cast(TxParams, tx)))


def _preflight_call(w3: Web3, tx: dict) -> None:
    """Run ``tx`` as an ``eth_call`` on the pending block, which is the block it will be mined in.

    Estimation on some nodes runs against the latest block instead, one second early. A refusal
    that depends on time (a session window, a user op's validAfter/validUntil) must be raised
    against the next block's timestamp. Set-code transactions are skipped, because ``eth_call``
    does not apply authorization lists everywhere.
    """
    if tx.get("authorizationList"):
        return
    call = {k: tx[k] for k in ("from", "to", "data", "value") if k in tx}
    try:
        w3.eth.call(cast(TxParams, call), "pending")
    except revert_exceptions() as exc:
        raise decode_revert(revert_data_of(exc) or b"") from None


def _replay_revert(w3: Web3, tx: dict, receipt) -> SmartKeysError | None:
    """Best effort: re-run the failed transaction as a call at its parent block to read the revert."""
    call = {k: tx[k] for k in ("from", "to", "data", "value") if k in tx}
    try:
        w3.eth.call(cast(TxParams, call), receipt["blockNumber"] - 1)
    except revert_exceptions() as exc:
        return decode_revert(revert_data_of(exc) or b"")
    except Exception:  # noqa: BLE001 - diagnostics only: the failure itself is already being raised
        return None
    return None
