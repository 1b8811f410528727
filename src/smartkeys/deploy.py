"""Deploy EntryPoint v0.8 and the smartkeys contracts to any chain, at their deterministic addresses.

Everything goes through the deterministic deployment proxy (:data:`~smartkeys.deployments.CREATE2_DEPLOYER`),
so every address depends only on the shipped creation bytecode and a salt and is the same on every chain:

- EntryPoint v0.8 at its canonical ``0x4337084D…Ff108`` (the vendored ``@account-abstraction/contracts@0.8.0``
  creation bytecode + the canonical salt);
- SmartKeysAccount at ``create2(proxy, keccak("smartkeys.v1"), bytecode)``.

The steps, in the order they run (nothing is signed before step 3)::

    plan_deployment(w3, chain_id)      1. eth_chainId must equal chain_id (ChainMismatchError)
                                       2. read the code at each address: missing -> to deploy,
                                          expected code -> already deployed, other code -> CodeMismatchError;
                                          the proxy must exist if anything is missing
    execute_plan(w3, plan, account)    3. check the balance covers the gas, sign, send, wait (progress lines),
                                          check the code that landed
    write_deployment_file(result, dir) 4. deployments/<chainId>.json

:func:`deploy` runs all of them. Expected code: SmartKeysAccount has no immutables, so its runtime code must be
exactly the artifact's ``deployedBytecode``. EntryPoint has immutables (its EIP-712 domain, which includes the
chain id, and its SenderCreator's address): they are zeros in the artifact, so the runtime code must be equal to
the artifact's byte for byte except inside those zero-filled words.

Errors::

    SmartKeysError
    ├── ChainMismatchError (smartkeys.errors)   the RPC serves another chain: nothing was signed
    ├── KeystoreError (smartkeys.keystore)      the deployer key could not be loaded
    └── DeployError
        ├── NoDeterministicDeployerError       no CREATE2 proxy on the chain: how to install it
        ├── CodeMismatchError                  other code at a deterministic address: .address .name
        ├── InsufficientFundsError             the deployer cannot pay: .balance .needed
        └── DeploymentFailedError              a sent transaction failed or left no code: .tx_hash

The deployer's private key is never printed, logged or written.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress, HexStr
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.types import TxParams

from smartkeys import artifacts
from smartkeys._secrets import secret_frames_dropped
from smartkeys.deployments import (
    ACCOUNT_ARTIFACT,
    CREATE2_DEPLOYER,
    ENTRY_POINT_SALT,
    ENTRY_POINT_V08,
    SMARTKEYS_SALT,
    _salt_bytes,
    create2_address,
)
from smartkeys.errors import SmartKeysError, decode_revert
from smartkeys.safe_files import FileInputError, FileMissingError, load_file
from smartkeys.tx import check_chain_id, revert_data_of, revert_exceptions, suggest_fees

__all__ = [
    "CREATE2_DEPLOYER_RUNTIME",
    "CodeMismatchError",
    "ContractSpec",
    "DEPLOYER_FUNDING_WEI",
    "DEPLOYER_SIGNER",
    "DeployError",
    "DeployResult",
    "DeployedContract",
    "DeploymentFailedError",
    "DeploymentPlan",
    "EXIT_CHAIN_MISMATCH",
    "EXIT_CODE_MISMATCH",
    "EXIT_ERROR",
    "EXIT_FAILED",
    "EXIT_FUNDS",
    "EXIT_KEY",
    "EXIT_NO_DEPLOYER",
    "EXIT_OK",
    "EXIT_USAGE",
    "InsufficientFundsError",
    "KEY_ENV_VAR",
    "NoDeterministicDeployerError",
    "PASSWORD_ENV_VAR",
    "PlannedContract",
    "code_matches",
    "default_contracts",
    "deploy",
    "execute_plan",
    "load_deployer_key",
    "main",
    "plan_deployment",
    "redact_url",
    "write_deployment_file",
]

#: Runtime code of the deterministic deployment proxy (Arachnid's ``deterministic-deployment-proxy``).
CREATE2_DEPLOYER_RUNTIME = bytes.fromhex(
    "7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffe0"
    "3601600081602082378035828234f58015156039578182fd5b8082525050506014600cf3"
)
#: Signer of the proxy's pre-signed (pre-EIP-155) deployment transaction: 100,000 gas at 100 gwei.
DEPLOYER_SIGNER = to_checksum_address("0x3fab184622dc19b6109349b94811493bf2a45362")
DEPLOYER_FUNDING_WEI = 100_000 * 100 * 10**9

ProgressFn = Callable[[str], None]

_GAS_HEADROOM_NUM = 12
_GAS_HEADROOM_DEN = 10
_GAS_FLAT_MARGIN = 20_000
_MIN_IMMUTABLE_RUN = 20  # an immutable is a PUSH20/PUSH32 of zeros in the artifact


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------


class DeployError(SmartKeysError):
    """A deployment could not be planned or carried out."""


class NoDeterministicDeployerError(DeployError):
    """The chain has no deterministic deployment proxy, so nothing can land at its canonical address."""

    def __init__(self, chain_id: int) -> None:
        self.chain_id = chain_id
        funding = DEPLOYER_FUNDING_WEI / 10**18
        super().__init__(
            f"chain {chain_id} has no deterministic deployment proxy at {CREATE2_DEPLOYER}: every smartkeys "
            "address (and EntryPoint v0.8's canonical one) is computed from it. Fix: install it with its "
            "pre-signed transaction (https://github.com/Arachnid/deterministic-deployment-proxy): send "
            f"{funding:g} ether (100,000 gas at 100 gwei) to its signer {DEPLOYER_SIGNER}, then broadcast "
            "the pre-signed raw transaction with eth_sendRawTransaction. It is a pre-EIP-155 transaction: "
            "a node that refuses unprotected transactions must allow them (geth: --rpc.allow-unprotected-txs). "
            "anvil and most public chains already have the proxy."
        )


class CodeMismatchError(DeployError):
    """A deterministic address holds code other than the expected contract's. Nothing was sent."""

    def __init__(self, name: str, address: str, found: bytes, expected_len: int) -> None:
        self.name = name
        self.address = address
        self.found_code_hash = "0x" + keccak(found).hex()
        super().__init__(
            f"{name} expected at {address}, but that address holds other code ({len(found)} bytes, "
            f"keccak {self.found_code_hash}; expected {expected_len} bytes of {name} runtime code). "
            "Nothing was sent. Fix: check that this package's artifacts are the released ones "
            "(`python -m smartkeys.build --check`), or that the chain is the one you meant."
        )


class InsufficientFundsError(DeployError):
    """The deployer's balance does not cover the worst-case cost of the transactions. Nothing was sent."""

    def __init__(self, address: str, balance: int, needed: int) -> None:
        self.address = address
        self.balance = balance
        self.needed = needed
        super().__init__(
            f"deployer {address} has {balance} wei but the deployment may cost up to {needed} wei "
            f"(gas x max fee). Nothing was sent. Fix: fund {address} with at least {needed - balance} wei."
        )


class DeploymentFailedError(DeployError):
    """A deployment transaction failed, timed out, or left no (or unexpected) code."""

    def __init__(self, message: str, *, tx_hash: str | None = None) -> None:
        self.tx_hash = tx_hash
        super().__init__(message)


# --------------------------------------------------------------------------------------------
# what to deploy
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContractSpec:
    """One contract to place through the proxy: its shipped artifact and salt."""

    name: str
    artifact: str
    salt: bytes
    has_immutables: bool = False

    def artifact_data(self) -> Mapping[str, Any]:
        return artifacts.load(self.artifact)

    @property
    def init_code(self) -> bytes:
        return bytes.fromhex(self.artifact_data()["bytecode"].removeprefix("0x"))

    @property
    def runtime_code(self) -> bytes:
        return bytes.fromhex(self.artifact_data()["deployedBytecode"].removeprefix("0x"))

    @property
    def address(self) -> str:
        return create2_address(CREATE2_DEPLOYER, self.salt, self.init_code)


def default_contracts() -> tuple[ContractSpec, ...]:
    """EntryPoint v0.8 (canonical salt) and SmartKeysAccount (``keccak("smartkeys.v1")``), in deployment order."""
    entry_point = ContractSpec("EntryPoint", "vendor/EntryPoint", _salt_bytes(ENTRY_POINT_SALT), has_immutables=True)
    if entry_point.address != ENTRY_POINT_V08:  # pragma: no cover - guards the vendored artifact
        raise DeployError(
            f"the vendored EntryPoint would deploy to {entry_point.address}, not the canonical {ENTRY_POINT_V08}: "
            "its creation bytecode is not @account-abstraction/contracts@0.8.0's"
        )
    return (entry_point, ContractSpec("SmartKeysAccount", ACCOUNT_ARTIFACT, _salt_bytes(SMARTKEYS_SALT)))


def code_matches(found: bytes, expected: bytes, *, immutables: bool = False) -> bool:
    """Whether on-chain ``found`` code is the ``expected`` runtime code.

    Exact equality, unless ``immutables``: then bytes may differ only where ``expected`` has a run of at least
    20 zero bytes (where solc leaves room for an immutable in an artifact's ``deployedBytecode``).

    >>> code_matches(b"\\x60\\x01", b"\\x60\\x01")
    True
    >>> code_matches(b"\\x7f" + b"\\x11" * 32, b"\\x7f" + b"\\x00" * 32, immutables=True)
    True
    >>> code_matches(b"\\x60\\x02", b"\\x60\\x01", immutables=True)
    False
    """
    found, expected = bytes(found), bytes(expected)
    if found == expected:
        return True
    if not immutables or len(found) != len(expected):
        return False
    in_zero_run = bytearray(len(expected))
    i = 0
    while i < len(expected):
        if expected[i] == 0:
            j = i
            while j < len(expected) and expected[j] == 0:
                j += 1
            if j - i >= _MIN_IMMUTABLE_RUN:
                in_zero_run[i:j] = b"\x01" * (j - i)
            i = j
        else:
            i += 1
    return all(a == b or in_zero_run[k] for k, (a, b) in enumerate(zip(found, expected, strict=True)))


# --------------------------------------------------------------------------------------------
# plan
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedContract:
    """A contract of a plan. ``status`` is ``"missing"`` (to deploy) or ``"already deployed"``."""

    name: str
    address: str
    salt: str
    status: str
    init_code_hash: str
    artifact_sha256: str
    data: bytes = field(repr=False, default=b"")  # calldata for the proxy: salt ++ init code
    runtime_code: bytes = field(repr=False, default=b"")
    has_immutables: bool = False


@dataclass(frozen=True)
class DeploymentPlan:
    chain_id: int
    block: int
    contracts: tuple[PlannedContract, ...]

    @property
    def missing(self) -> tuple[PlannedContract, ...]:
        return tuple(c for c in self.contracts if c.status == "missing")


def _artifact_sha256(spec: ContractSpec) -> str:
    data = artifacts.load(spec.artifact)
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def plan_deployment(
    w3: Web3, chain_id: int, contracts: tuple[ContractSpec, ...] | None = None
) -> DeploymentPlan:
    """Check the chain id, then read what is already on chain. Read-only: nothing is signed or sent.

    Raises :class:`~smartkeys.errors.ChainMismatchError` if the RPC serves another chain,
    :class:`CodeMismatchError` if an address holds other code, and :class:`NoDeterministicDeployerError`
    if something must be deployed and the proxy is missing (or is not the proxy).
    """
    if isinstance(chain_id, bool) or not isinstance(chain_id, int) or chain_id <= 0:
        raise DeployError(f"chain_id must be a positive integer, got {chain_id!r}")
    check_chain_id(w3, chain_id)
    block = int(w3.eth.block_number)
    planned = []
    for spec in contracts or default_contracts():
        address = spec.address
        found = bytes(w3.eth.get_code(cast(ChecksumAddress, address), block))
        if not found:
            status = "missing"
        elif code_matches(found, spec.runtime_code, immutables=spec.has_immutables):
            status = "already deployed"
        else:
            raise CodeMismatchError(spec.name, address, found, len(spec.runtime_code))
        planned.append(
            PlannedContract(
                name=spec.name,
                address=address,
                salt="0x" + spec.salt.hex(),
                status=status,
                init_code_hash="0x" + keccak(spec.init_code).hex(),
                artifact_sha256=_artifact_sha256(spec),
                data=spec.salt + spec.init_code if status == "missing" else b"",
                runtime_code=spec.runtime_code,
                has_immutables=spec.has_immutables,
            )
        )
    plan = DeploymentPlan(chain_id=chain_id, block=block, contracts=tuple(planned))
    if plan.missing:
        proxy = bytes(w3.eth.get_code(CREATE2_DEPLOYER, block))
        if not proxy:
            raise NoDeterministicDeployerError(chain_id)
        if proxy != CREATE2_DEPLOYER_RUNTIME:
            raise CodeMismatchError("the deterministic deployment proxy", CREATE2_DEPLOYER, proxy, len(CREATE2_DEPLOYER_RUNTIME))
    return plan


# --------------------------------------------------------------------------------------------
# execute
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeployedContract:
    name: str
    address: str
    status: str  # "deployed", "already deployed" or "would deploy" (dry run)
    tx_hash: str | None = None
    block: int | None = None
    gas_used: int | None = None
    gas_limit: int | None = None
    salt: str = ""
    init_code_hash: str = ""
    artifact_sha256: str = ""


@dataclass(frozen=True)
class DeployResult:
    chain_id: int
    block: int
    deployer: str | None
    dry_run: bool
    contracts: tuple[DeployedContract, ...]
    compiler: str = ""

    @property
    def sent(self) -> tuple[DeployedContract, ...]:
        return tuple(c for c in self.contracts if c.status == "deployed")

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "block": self.block,
            "deployer": self.deployer,
            "dry_run": self.dry_run,
            "compiler": self.compiler,
            "create2_deployer": CREATE2_DEPLOYER,
            "contracts": {c.name: {k: v for k, v in asdict(c).items() if k != "name"} for c in self.contracts},
        }


def _estimate(w3: Web3, tx: dict) -> int:
    try:
        estimate = int(w3.eth.estimate_gas(cast(TxParams, tx)))
    except revert_exceptions() as exc:
        raise DeploymentFailedError(
            f"the deployment to {tx['to']} would revert: {decode_revert(revert_data_of(exc) or b'')}"
        ) from None
    return estimate * _GAS_HEADROOM_NUM // _GAS_HEADROOM_DEN + _GAS_FLAT_MARGIN


def _wait_receipt(w3: Web3, tx_hash: str, *, timeout: float, poll: float, progress: ProgressFn, label: str) -> Any:
    from web3.exceptions import TransactionNotFound

    started = time.monotonic()
    next_report = started + 5.0
    while True:
        try:
            receipt = w3.eth.get_transaction_receipt(cast(HexStr, tx_hash))
        except TransactionNotFound:
            receipt = None
        if receipt is not None:
            return receipt
        now = time.monotonic()
        if now - started > timeout:
            raise DeploymentFailedError(
                f"no receipt for {label} transaction {tx_hash} after {timeout:.0f} s; it may still be mined: "
                "re-run the same command later (it deploys only what is still missing)",
                tx_hash=tx_hash,
            )
        if now >= next_report:
            progress(f"  still waiting for {label} ({tx_hash}), {now - started:.0f} s")
            next_report = now + 5.0
        time.sleep(poll)


def execute_plan(
    w3: Web3,
    plan: DeploymentPlan,
    account: LocalAccount | None,
    *,
    dry_run: bool = False,
    progress: ProgressFn | None = None,
    receipt_timeout: float = 300.0,
    poll_interval: float = 0.2,
    priority_fee_wei: int = 10**9,
) -> DeployResult:
    """Send a proxy call for every missing contract of ``plan``; return what happened.

    The chain id is checked again just before signing. With ``dry_run`` nothing is signed: each missing
    contract is reported as ``"would deploy"`` with the gas it would be given (``account`` may be None).
    """
    say = progress or (lambda _msg: None)
    check_chain_id(w3, plan.chain_id)
    results: list[DeployedContract] = []
    deployer = account.address if account is not None else None
    nonce = int(w3.eth.get_transaction_count(deployer, "pending")) if deployer else None
    compiler = artifacts.load(ACCOUNT_ARTIFACT).get("compiler", {}).get("version", "")

    def base(c: PlannedContract, **kw: Any) -> DeployedContract:
        return DeployedContract(
            name=c.name, address=c.address, salt=c.salt, init_code_hash=c.init_code_hash,
            artifact_sha256=c.artifact_sha256, **kw,
        )

    # Estimate every transaction first, so that a shortfall is reported before anything is sent.
    txs: dict[str, dict] = {}
    max_fee, tip = suggest_fees(w3, priority_fee_wei)
    for c in plan.missing:
        tx = {"to": CREATE2_DEPLOYER, "data": c.data, "value": 0, "chainId": plan.chain_id}
        if deployer:
            tx["from"] = deployer
        tx["gas"] = _estimate(w3, tx)
        tx.update(maxFeePerGas=max_fee, maxPriorityFeePerGas=tip)
        txs[c.name] = tx
    if account is not None and txs and not dry_run:
        needed = sum(tx["gas"] * tx["maxFeePerGas"] for tx in txs.values())
        balance = int(w3.eth.get_balance(account.address))
        if balance < needed:
            raise InsufficientFundsError(account.address, balance, needed)

    for c in plan.contracts:
        if c.status != "missing":
            say(f"{c.name}: already deployed at {c.address}, nothing to send")
            results.append(base(c, status="already deployed"))
            continue
        tx = txs[c.name]
        if dry_run:
            say(
                f"{c.name}: would deploy to {c.address}: tx to {CREATE2_DEPLOYER} "
                f"(salt {c.salt}, {len(c.data) - 32} bytes of init code, gas {tx['gas']}"
                + (f", from {deployer} nonce {nonce}" if deployer else "")
                + ")"
            )
            results.append(base(c, status="would deploy", gas_limit=tx["gas"]))
            if nonce is not None:
                nonce += 1
            continue
        if account is None or nonce is None:  # nonce is read whenever account is given
            raise DeployError("a deployer key is needed to deploy (or use dry_run)")
        tx = dict(tx, nonce=nonce)
        check_chain_id(w3, plan.chain_id)
        signed = account.sign_transaction(cast(dict[str, Any], tx))
        tx_hash = Web3.to_hex(w3.eth.send_raw_transaction(signed.raw_transaction))
        say(f"{c.name}: sent {tx_hash} (nonce {nonce}, gas {tx['gas']}), waiting for the receipt…")
        receipt = _wait_receipt(w3, tx_hash, timeout=receipt_timeout, poll=poll_interval, progress=say, label=c.name)
        nonce += 1
        if receipt["status"] != 1:
            raise DeploymentFailedError(f"{c.name} deployment {tx_hash} failed (status 0)", tx_hash=tx_hash)
        found = bytes(w3.eth.get_code(cast(ChecksumAddress, c.address)))
        if not found:
            raise DeploymentFailedError(f"{c.name} deployment {tx_hash} was mined but left no code at {c.address}", tx_hash=tx_hash)
        if not code_matches(found, c.runtime_code, immutables=c.has_immutables):
            raise DeploymentFailedError(f"{c.name} deployment {tx_hash} left unexpected code at {c.address}", tx_hash=tx_hash)
        say(f"{c.name}: deployed at {c.address} in block {receipt['blockNumber']} ({receipt['gasUsed']} gas)")
        results.append(
            base(c, status="deployed", tx_hash=tx_hash, block=int(receipt["blockNumber"]),
                 gas_used=int(receipt["gasUsed"]), gas_limit=tx["gas"])
        )
    block = int(w3.eth.block_number)
    return DeployResult(
        chain_id=plan.chain_id, block=block, deployer=deployer, dry_run=dry_run,
        contracts=tuple(results), compiler=compiler,
    )


# --------------------------------------------------------------------------------------------
# record
# --------------------------------------------------------------------------------------------


#: Largest deployments record read back (it lists a few contracts).
DEPLOYMENTS_MAX_BYTES = 1024 * 1024


def write_deployment_file(result: DeployResult, out_dir: str | os.PathLike[str] = "deployments") -> Path:
    """Write (atomically) ``<out_dir>/<chainId>.json``; keep the tx hash of contracts deployed by an earlier run."""
    if result.dry_run:
        raise DeployError("a dry run is not written to the deployments file")
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{result.chain_id}.json"
    previous: Any = {}
    try:  # bounded, non-blocking read; a special file or a symlink loop is refused with the fix
        previous = load_file(target, "JSON", kind="deployments file", max_bytes=DEPLOYMENTS_MAX_BYTES)
        previous = previous.get("contracts", {}) if isinstance(previous, dict) else {}
    except FileMissingError:
        previous = {}
    except FileInputError as exc:
        if exc.reason in ("unreadable", "not_regular", "too_large"):
            raise
        previous = {}  # unreadable content (bad JSON, too deep, ...): rewritten from this run's results
    data = result.to_json()
    data.pop("dry_run")
    for name, entry in data["contracts"].items():
        old = previous.get(name) if isinstance(previous, dict) else None
        if entry["status"] == "already deployed" and isinstance(old, dict) and old.get("address") == entry["address"]:
            for key in ("tx_hash", "block", "gas_used", "gas_limit"):
                if entry.get(key) is None and old.get(key) is not None:
                    entry[key] = old[key]
    tmp = directory / f".{target.name}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return target


def redact_url(url: str) -> str:
    """``scheme://host[:port]`` of an RPC URL: paths, queries and credentials often carry API keys.

    >>> redact_url("https://user:pw@eth.example.com/v3/SECRET?x=1")
    'https://eth.example.com/…'
    >>> redact_url("http://127.0.0.1:8545")
    'http://127.0.0.1:8545'
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    hidden = "/…" if (parts.path not in ("", "/") or parts.query or parts.fragment) else ""
    return f"{parts.scheme}://{host}{hidden}" if parts.scheme else "(rpc)"


def deploy(
    w3: Web3,
    chain_id: int,
    account: LocalAccount | None,
    *,
    dry_run: bool = False,
    out_dir: str | os.PathLike[str] | None = "deployments",
    progress: ProgressFn | None = None,
    **kw: Any,
) -> tuple[DeployResult, Path | None]:
    """Plan, execute and record. Returns the result and the deployments file (None for a dry run)."""
    plan = plan_deployment(w3, chain_id)
    result = execute_plan(w3, plan, account, dry_run=dry_run, progress=progress, **kw)
    path = None if dry_run or out_dir is None else write_deployment_file(result, out_dir)
    return result, path


# --------------------------------------------------------------------------------------------
# command line (`smartkeys deploy` runs main)
# --------------------------------------------------------------------------------------------

KEY_ENV_VAR = "SMARTKEYS_DEPLOYER_KEY"
PASSWORD_ENV_VAR = "SMARTKEYS_PASSWORD"  # the same variable as the smartkeys command

#: Exit codes of :func:`main`.
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CHAIN_MISMATCH = 3
EXIT_KEY = 4
EXIT_NO_DEPLOYER = 5
EXIT_CODE_MISMATCH = 6
EXIT_FUNDS = 7
EXIT_FAILED = 8


@secret_frames_dropped
def load_deployer_key(
    keystore: str | os.PathLike[str] | None,
    *,
    environ: Mapping[str, str] | None = None,
    prompt: Callable[[str], str] | None = None,
) -> LocalAccount:
    """The deployer account: from an encrypted ``keystore`` (password from ``$SMARTKEYS_PASSWORD``
    or ``prompt``, getpass by default, which never echoes) or else from ``$SMARTKEYS_DEPLOYER_KEY``.

    Raises :class:`~smartkeys.keystore.KeystoreError` (or a subclass) with a message that never shows the key.
    """
    import sys

    from smartkeys.keystore import KeystoreError, load_key_from_env, load_keystore

    env = os.environ if environ is None else environ
    if keystore is not None:
        password = env.get(PASSWORD_ENV_VAR)
        if not password:
            if prompt is None:
                if not sys.stdin.isatty():
                    raise KeystoreError(
                        f"no terminal to ask the password of {keystore} on; fix: set {PASSWORD_ENV_VAR}",
                        path=keystore,
                    )
                import getpass

                prompt = getpass.getpass
            password = prompt(f"password for keystore {keystore}: ")
        return load_keystore(keystore, password).account
    if not env.get(KEY_ENV_VAR):
        raise KeystoreError(
            f"no deployer key: pass --keystore FILE (an encrypted Web3 Secret Storage v3 file) or set {KEY_ENV_VAR}"
        )
    return load_key_from_env(KEY_ENV_VAR, environ=env).account


def _build_parser(prog: str = "smartkeys deploy") -> Any:
    import argparse

    parser = argparse.ArgumentParser(
        prog=prog,
        description="Deploy EntryPoint v0.8 (where missing) and SmartKeysAccount at their deterministic "
        "addresses through the deterministic deployment proxy. Idempotent: what is already there is verified "
        "and not sent again.",
        epilog=f"Deployer key: --keystore FILE (password from ${PASSWORD_ENV_VAR} or a prompt) or ${KEY_ENV_VAR}. "
        f"Exit codes: 0 ok, 1 other error, 2 usage, {EXIT_CHAIN_MISMATCH} chain id mismatch, {EXIT_KEY} key, "
        f"{EXIT_NO_DEPLOYER} no deterministic deployer, {EXIT_CODE_MISMATCH} other code at an address, "
        f"{EXIT_FUNDS} insufficient funds, {EXIT_FAILED} a transaction failed.",
    )
    parser.add_argument("--rpc-url", required=True, help="JSON-RPC endpoint of the chain")
    parser.add_argument(
        "--chain-id", "--expect-chain-id", dest="chain_id", type=int, required=True,
        help="the chain id you mean; checked against eth_chainId before anything is signed",
    )
    parser.add_argument("--keystore", help="encrypted keystore of the deployer")
    parser.add_argument("--out-dir", default="deployments", help="where <chainId>.json is written (default: deployments/)")
    parser.add_argument("--dry-run", action="store_true", help="show what would be sent; sign and send nothing")
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout (progress goes to stderr)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for each receipt (default 300)")
    return parser


def main(argv: list[str] | None = None, *, prog: str = "smartkeys deploy") -> int:
    """The deploy command (``smartkeys deploy``). Progress lines go to stderr; the summary (or ``--json``) to
    stdout. Returns an ``EXIT_*`` code of this module; argparse exits (SystemExit 2) on a usage error."""
    import sys

    from smartkeys.errors import ChainMismatchError
    from smartkeys.keystore import KeystoreError

    args = _build_parser(prog).parse_args(argv)

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    def fail(code: int, exc: BaseException) -> int:
        if args.json:
            print(json.dumps({"error": type(exc).__name__, "message": str(exc), "exit_code": code}))
        print(f"error: {exc}", file=sys.stderr)
        return code

    w3 = Web3(Web3.HTTPProvider(args.rpc_url, request_kwargs={"timeout": 60}))
    where = redact_url(args.rpc_url)
    try:
        progress(f"checking chain id at {where} (expecting {args.chain_id})")
        plan = plan_deployment(w3, args.chain_id)
        account = None
        if not args.dry_run or args.keystore or os.environ.get(KEY_ENV_VAR):
            account = load_deployer_key(args.keystore)
            progress(f"deployer {account.address}")
        if not plan.missing:
            progress("everything is already deployed: nothing to send")
        result = execute_plan(w3, plan, account, dry_run=args.dry_run, progress=progress, receipt_timeout=args.timeout)
        path = None if args.dry_run else write_deployment_file(result, args.out_dir)
    except ChainMismatchError as exc:
        return fail(EXIT_CHAIN_MISMATCH, exc)
    except KeystoreError as exc:
        return fail(EXIT_KEY, exc)
    except NoDeterministicDeployerError as exc:
        return fail(EXIT_NO_DEPLOYER, exc)
    except CodeMismatchError as exc:
        return fail(EXIT_CODE_MISMATCH, exc)
    except InsufficientFundsError as exc:
        return fail(EXIT_FUNDS, exc)
    except DeploymentFailedError as exc:
        return fail(EXIT_FAILED, exc)
    except SmartKeysError as exc:
        return fail(EXIT_ERROR, exc)
    except Exception as exc:  # noqa: BLE001 - connection errors and the like: one clear line, no traceback
        return fail(EXIT_ERROR, DeployError(f"{type(exc).__name__} talking to {where}: {exc}"))

    if args.json:
        out = result.to_json()
        out["file"] = str(path) if path else None
        out["sent"] = len(result.sent)
        print(json.dumps(out, indent=2, sort_keys=True))
    else:
        for c in result.contracts:
            extra = f" tx {c.tx_hash} block {c.block}" if c.tx_hash else ""
            print(f"{c.name:<17} {c.address}  {c.status}{extra}")
        if args.dry_run:
            print(f"dry run: {sum(1 for c in result.contracts if c.status == 'would deploy')} transaction(s) would be sent, none was")
        elif result.sent:
            print(f"{len(result.sent)} contract(s) deployed; wrote {path}")
        else:
            print(f"nothing deployed: all contracts already deployed on chain {result.chain_id}; wrote {path}")
    return EXIT_OK
