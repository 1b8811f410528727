"""An embedded local Prague chain with the canonical ERC-4337 / EIP-7702 deployments.

``start_local_chain()`` returns a :class:`LocalChain`: a ``web3.Web3`` connected to an
in-process chain, funded test accounts, and the deterministic deployment proxy, EntryPoint
v0.8 and Simple7702Account at their canonical addresses (same addresses as on mainnet and on
anvil). The chain-specific parts (snapshots, time, mining) live in a small backend class so
that an anvil backend can be added next to the eth-tester one without changing callers.

Accounts
--------
``LocalChain.accounts`` are derived from the well-known test mnemonic
``test test ... junk`` at ``m/44'/60'/0'/0/i`` -- the same keys anvil and Hardhat fund by
default, so both backends expose identical accounts. They are PUBLIC test keys: never use them
on a real network. ``LocalChain.deployer`` is the next key of the same mnemonic (index
``num_accounts``); it pays for the canonical deployments so that ``accounts[0]`` starts every
test session with nonce 0.

What eth-tester 0.14.0b1 / py-evm 0.12.1b1 (PragueVM) does -- measured, not assumed
------------------------------------------------------------------------------------
* Auto-mining: every transaction is mined at once in its own block (block number + 1 per tx).
* Timestamps: the pending block's header is created when the previous block is mined, with
  ``timestamp = max(parent.timestamp + 1, wall clock)``. Consecutive transactions therefore
  get timestamps +1 s apart even within the same wall-clock second, and the chain clock runs
  ahead of the wall clock. ``eth_call``/``eth_estimateGas`` on ``"latest"`` execute in the
  context of the latest *mined* block (``block.timestamp`` and ``block.number`` of that block,
  not of the next one).
* Exact next-block timestamp: :meth:`LocalChain.set_next_block_timestamp` rewrites the pending
  header's timestamp (py-evm ``chain.header``); the next transaction, or the next
  :meth:`LocalChain.mine`, produces a block with exactly that timestamp, and blocks after it
  continue at ``max(ts + 1, wall clock)``. The timestamp must be strictly greater than the
  latest block's (py-evm rejects equal timestamps). eth-tester's own ``time_travel(ts)`` is
  NOT used: it mines an extra empty block at ``ts - 1`` and only then makes the next block
  ``ts``.
* Snapshots: ``EthereumTester.take_snapshot()`` records the latest block hash;
  ``revert_to_snapshot(id)`` makes that block the canonical head again. Snapshot ids are never
  consumed: a snapshot can be reverted to any number of times, and even a snapshot taken on a
  branch that was later reverted away can still be reverted to (its blocks stay in the
  database). Reverting drops a pending ``set_next_block_timestamp``. Receipts of reverted
  transactions disappear (``TransactionNotFound``); re-sending the identical signed
  transaction afterwards works and mines it again.
* Block gas limit: taken from the genesis and kept constant. Any value works in py-evm Prague
  (tried 30M, 60M, 1e9, 2**63-1); we default to 60,000,000 (anvil's default is 30M).
  ``eth_call`` without ``gas`` gets the whole block gas limit.
* ``eth_estimateGas`` works (also for type-4 transactions with an ``authorizationList``). py-evm's
  default estimator is a binary search with 21,000 gas *tolerance* (it can over-estimate by
  up to 21k); this module switches the chain to py-evm's exact binary search so estimates
  are the minimum gas that succeeds, like anvil's. A reverting estimate raises.
* Reverts in ``eth_call`` / ``eth_estimateGas`` surface as ``eth_tester.exceptions.TransactionFailed``
  ("execution reverted: <reason>"), NOT as web3's ``ContractLogicError`` as with an HTTP node.
* State overrides are NOT supported: ``eth_call`` / ``eth_estimateGas`` with a third
  (state-override) argument fail with ``TypeError`` inside eth-tester. Code that needs them
  must fall back (or use anvil).
* The chain id is fixed at 131277322940537 by eth-tester (web3's provider returns it
  statically); it cannot be changed to 31337.
* CREATE2 through the deterministic deployment proxy: a second deployment of the same init
  code and salt reverts (the proxy reverts when CREATE2 returns 0) and burns the gas given to
  it; :meth:`LocalChain.deploy_create2` therefore checks for existing code first.
* EIP-7702 (type-4) transactions with signed authorizations from eth-account's
  ``Account.sign_authorization`` work through :meth:`LocalChain.send`. Delegating sets the
  code to ``0xef0100 || address``; delegating to the zero address clears it. When the
  authority sends the set-code transaction itself, the authorization nonce must be its
  current nonce + 1 (the tx increments the nonce before the authorization is processed).
  An authorization with a wrong nonce or another chain id is skipped silently and the
  transaction still succeeds (status 1): check the code afterwards. Chain id 0 is accepted.
  Measured: one delegation + empty call to the delegated account = 36,837 gas, both
  self-sponsored and sponsored (same figure as anvil 1.7.1); ``eth_estimateGas`` says 46,046,
  the gas before refunds: the authority already exists, so 12,500 of the 25,000 per
  authorization is refunded, capped at 46,046 // 5 = 9,209 -> 36,837.
* Speed (one core, coincurve installed): importing this module ~0.8 s; the first
  ``start_local_chain()`` in a process ~0.32 s (key derivation and lazy imports), later ones
  ~0.13 s, including the EntryPoint (5,034,766 gas) and Simple7702Account deployments. One
  transaction through :meth:`LocalChain.send` until its receipt: ~11 ms with (exact) gas
  estimation, ~7.5 ms with an explicit ``gas``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, Protocol

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils import to_bytes, to_canonical_address, to_checksum_address
from web3 import Web3

from smartkeys import artifacts
from smartkeys.deployments import (
    CREATE2_DEPLOYER,
    ENTRY_POINT_SALT,
    ENTRY_POINT_V08,
    SIMPLE7702_ADDRESS,
    _salt_bytes,
    create2_address,
)
from smartkeys.tx import send_transaction

__all__ = [
    "CREATE2_DEPLOYER",
    "CREATE2_DEPLOYER_RUNTIME",
    "DEFAULT_BALANCE_WEI",
    "DEFAULT_GAS_LIMIT",
    "DEFAULT_NUM_ACCOUNTS",
    "ENTRY_POINT_SALT",
    "ENTRY_POINT_V08",
    "SIMPLE7702_ADDRESS",
    "TEST_MNEMONIC",
    "LocalChain",
    "LocalChainError",
    "create2_address",
    "init_code",
    "start_local_chain",
]

# --------------------------------------------------------------------------- constants

CREATE2_DEPLOYER_RUNTIME: bytes = bytes.fromhex(
    "7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffe0"
    "3601600081602082378035828234f58015156039578182fd5b8082525050506014600cf3"
)
"""Runtime code of :data:`CREATE2_DEPLOYER` (placed in the eth-tester genesis state)."""

TEST_MNEMONIC = "test test test test test test test test test test test junk"
"""Public test mnemonic (anvil/Hardhat default). Never use its keys on a real network."""

TEST_HD_PATH = "m/44'/60'/0'/0"
DEFAULT_NUM_ACCOUNTS = 10
DEFAULT_BALANCE_WEI = 1_000_000 * 10**18
DEFAULT_GAS_LIMIT = 60_000_000
DEFAULT_PRIORITY_FEE_WEI = 10**9
ANVIL_CHAIN_ID = 31337

ArtifactLike = str | Mapping[str, Any]
DeployHook = Callable[["LocalChain"], None]


class LocalChainError(RuntimeError):
    """The local chain could not be set up or a deployment did not land where expected."""


# --------------------------------------------------------------------------- pure helpers


def _load_artifact(artifact: ArtifactLike) -> Mapping[str, Any]:
    return artifacts.load(artifact) if isinstance(artifact, str) else artifact


def init_code(artifact: ArtifactLike, constructor_args: Sequence[Any] | bytes | None = None) -> bytes:
    """Creation bytecode of ``artifact`` followed by its ABI-encoded constructor arguments.

    ``constructor_args`` is either a sequence of Python values (encoded with the artifact's
    constructor ABI) or ``bytes`` that are already ABI-encoded.
    """
    art = _load_artifact(artifact)
    bytecode = art["bytecode"]
    if isinstance(bytecode, Mapping):  # solc standard-json shape {"object": ...}
        bytecode = bytecode["object"]
    if "__" in bytecode:
        raise LocalChainError("artifact bytecode has unlinked library placeholders")
    code = to_bytes(hexstr=bytecode)
    if not code:
        raise LocalChainError("artifact has no creation bytecode (abstract contract or interface?)")
    if constructor_args is None:
        return code
    if isinstance(constructor_args, (bytes, bytearray)):
        return code + bytes(constructor_args)
    from eth_abi import encode
    from eth_utils.abi import get_abi_input_types

    ctor = next((e for e in art.get("abi", []) if e.get("type") == "constructor"), None)
    types = get_abi_input_types(ctor) if ctor else []
    if len(types) != len(constructor_args):
        raise ValueError(f"constructor takes {len(types)} arguments, got {len(constructor_args)}")
    return code + encode(types, list(constructor_args))


@lru_cache(maxsize=8)
def _test_private_keys(count: int, mnemonic: str = TEST_MNEMONIC, hd_path: str = TEST_HD_PATH) -> tuple[bytes, ...]:
    from eth_account.hdaccount import key_from_seed, seed_from_mnemonic

    seed = seed_from_mnemonic(mnemonic, "")
    return tuple(key_from_seed(seed, f"{hd_path}/{i}") for i in range(count))


# --------------------------------------------------------------------------- backends


class _Backend(Protocol):
    """What :class:`LocalChain` needs from a chain implementation."""

    name: str
    w3: Web3

    def snapshot(self) -> int: ...
    def revert(self, snapshot_id: int) -> None: ...
    def time(self) -> int: ...
    def set_next_block_timestamp(self, timestamp: int) -> None: ...
    def mine(self, blocks: int) -> None: ...
    def close(self) -> None: ...


class _EthTesterBackend:
    """py-evm (PragueVM) in process through eth-tester and web3's EthereumTesterProvider."""

    name = "eth-tester"

    def __init__(
        self,
        funded_keys: Sequence[bytes],
        *,
        listed_keys: Sequence[bytes] | None = None,
        balance_wei: int = DEFAULT_BALANCE_WEI,
        gas_limit: int = DEFAULT_GAS_LIMIT,
        exact_gas_estimates: bool = True,
    ) -> None:
        from eth_keys import keys as eth_keys
        from eth_tester import EthereumTester, PyEVMBackend
        from web3 import EthereumTesterProvider

        genesis_state: dict[bytes, dict[str, Any]] = {
            to_canonical_address(Account.from_key(k).address): {
                "balance": balance_wei,
                "nonce": 0,
                "code": b"",
                "storage": {},
            }
            for k in funded_keys
        }
        genesis_state[to_canonical_address(CREATE2_DEPLOYER)] = {
            "balance": 0,
            "nonce": 1,
            "code": CREATE2_DEPLOYER_RUNTIME,
            "storage": {},
        }
        params = PyEVMBackend.generate_genesis_params(overrides={"gas_limit": gas_limit})
        pyevm = PyEVMBackend(genesis_parameters=params, genesis_state=genesis_state)
        # eth-tester made up its own keys (ints 1..n) for eth_accounts / send_transaction;
        # make them ours so w3.eth.accounts are the test accounts (not the deployer).
        listed = funded_keys if listed_keys is None else listed_keys
        pyevm.account_keys = tuple(eth_keys.PrivateKey(k) for k in listed)
        if exact_gas_estimates:
            from eth.estimators.gas import binary_gas_search_exact

            # On the class too: reverting to the genesis snapshot builds a new chain object.
            type(pyevm.chain).gas_estimator = staticmethod(binary_gas_search_exact)
            pyevm.chain.gas_estimator = binary_gas_search_exact
        self.tester = EthereumTester(backend=pyevm)
        self.w3 = Web3(EthereumTesterProvider(ethereum_tester=self.tester))

    @property
    def _pyevm_chain(self) -> Any:
        return self.tester.backend.chain

    def snapshot(self) -> int:
        return int(self.tester.take_snapshot())

    def revert(self, snapshot_id: int) -> None:
        from eth_tester.exceptions import SnapshotNotFound

        try:
            self.tester.revert_to_snapshot(snapshot_id)
        except SnapshotNotFound:
            raise LookupError(f"no snapshot with id {snapshot_id!r}") from None

    def time(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def set_next_block_timestamp(self, timestamp: int) -> None:
        chain = self._pyevm_chain
        chain.header = chain.header.copy(timestamp=int(timestamp))

    def mine(self, blocks: int) -> None:
        self.tester.mine_blocks(blocks)

    def close(self) -> None:
        pass


class _AnvilBackend:
    """A real anvil node (npm ``@foundry-rs/anvil-linux-amd64``, Prague) on a free loopback port.

    ``port`` and ``host`` fix where it listens (default: a free port on 127.0.0.1); a host other than
    loopback exposes the node, and its funded public dev keys, to the network. ``extra_args`` are passed to
    anvil as they are (e.g. ``["--prune-history", "200000"]`` to keep states in memory on a long chain).

    Same accounts as eth-tester (anvil derives them from the same mnemonic). anvil consumes a snapshot
    when reverting to it; to keep ids reusable, each revert takes a fresh snapshot for the same id.
    """

    name = "anvil"

    def __init__(
        self,
        funded_keys: Sequence[bytes],
        *,
        listed_keys: Sequence[bytes] | None = None,
        balance_wei: int = DEFAULT_BALANCE_WEI,
        gas_limit: int = DEFAULT_GAS_LIMIT,
        chain_id: int = ANVIL_CHAIN_ID,
        anvil_path: str | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        startup_timeout: float = 20.0,
        extra_args: Sequence[str] = (),
    ) -> None:
        import subprocess
        import time as _time

        if balance_wei % 10**18:
            raise ValueError("anvil funds accounts in whole ether: balance_wei must be a multiple of 10**18")
        binary = find_anvil(anvil_path)
        self.port = port or _free_loopback_port()
        self.host = host
        # a wildcard bind is still reached through loopback from this machine
        connect_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        self.url = f"http://{connect_host}:{self.port}"
        args = [
            binary, "--host", host, "--port", str(self.port), "--hardfork", "prague",
            "--chain-id", str(chain_id), "--mnemonic", TEST_MNEMONIC, "--accounts", str(len(funded_keys)),
            "--balance", str(balance_wei // 10**18), "--gas-limit", str(gas_limit), "--silent", *extra_args,
        ]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.w3 = Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": 30}))
        # Short timeout, no retries: if the port is taken by someone else, a request may hang on it.
        probe = Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": 1}, exception_retry_configuration=None))
        deadline = _time.monotonic() + startup_timeout
        while True:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                raise LocalChainError(f"anvil exited with code {self.process.returncode}: {err.strip()[:500]}")
            try:
                if int(probe.eth.chain_id) == chain_id:
                    break
            except Exception:  # noqa: BLE001 - not listening yet
                pass
            if _time.monotonic() > deadline:
                self.close()
                raise LocalChainError(f"anvil did not answer on {self.url} within {startup_timeout} s")
            _time.sleep(0.05)
        expected = [Account.from_key(k).address for k in funded_keys]
        if list(self.w3.eth.accounts)[: len(expected)] != expected:
            self.close()
            raise LocalChainError("anvil's dev accounts differ from the test mnemonic's")
        self._snapshots: dict[int, str] = {}
        self._next_id = 1

    def _rpc(self, method: str, params: list[Any]) -> Any:
        response = self.w3.provider.make_request(method, params)  # type: ignore[arg-type]
        if "error" in response:
            raise LocalChainError(f"{method} failed: {response['error']}")
        return response.get("result")

    def snapshot(self) -> int:
        public_id = self._next_id
        self._next_id += 1
        self._snapshots[public_id] = self._rpc("evm_snapshot", [])
        return public_id

    def revert(self, snapshot_id: int) -> None:
        if snapshot_id not in self._snapshots:
            raise LookupError(f"no snapshot with id {snapshot_id!r}")
        if not self._rpc("evm_revert", [self._snapshots[snapshot_id]]):
            raise LookupError(f"anvil refused to revert to snapshot {snapshot_id!r}")
        # anvil forgets every snapshot taken after this one; so do we, so that reverting to one is a clear error
        for later in [i for i in self._snapshots if i > snapshot_id]:
            del self._snapshots[later]
        self._snapshots[snapshot_id] = self._rpc("evm_snapshot", [])

    def time(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def set_next_block_timestamp(self, timestamp: int) -> None:
        self._rpc("evm_setNextBlockTimestamp", [int(timestamp)])

    def mine(self, blocks: int) -> None:
        self._rpc("anvil_mine", [hex(blocks)])

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except Exception:  # noqa: BLE001
                self.process.kill()
                self.process.wait(timeout=5)


def find_anvil(explicit: str | None = None) -> str:
    """Path of the anvil binary: ``explicit``, ``$SMARTKEYS_ANVIL``, the project's node_modules, or PATH."""
    import os
    import shutil
    from pathlib import Path

    candidates = [explicit, os.environ.get("SMARTKEYS_ANVIL")]
    relative = Path("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
    for base in (Path.cwd(), *Path.cwd().parents, Path(__file__).resolve().parents[2]):
        candidates.append(str(base / relative))
    candidates.append(shutil.which("anvil"))
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise LocalChainError(
        "anvil not found; fix: run `npm ci` in the smartkeys checkout (it pins @foundry-rs/anvil-linux-amd64), "
        "or set SMARTKEYS_ANVIL to an anvil binary"
    )


def _free_loopback_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_BACKENDS: dict[str, Callable[..., _Backend]] = {"eth-tester": _EthTesterBackend, "anvil": _AnvilBackend}


# --------------------------------------------------------------------------- LocalChain


class LocalChain:
    """A local chain plus funded accounts. Build it with :func:`start_local_chain`.

    Attributes: ``w3`` (``web3.Web3``), ``chain_id``, ``accounts`` (funded
    ``LocalAccount`` list), ``deployer`` (funded ``LocalAccount`` used for deployments),
    ``backend`` (backend name, e.g. ``"eth-tester"``).
    """

    deploy_smartkeys: bool  # set by start_local_chain: whether reset() deploys smartkeys again

    def __init__(
        self,
        backend: _Backend,
        accounts: Sequence[LocalAccount],
        deployer: LocalAccount,
        *,
        priority_fee_wei: int = DEFAULT_PRIORITY_FEE_WEI,
        receipt_timeout: float = 30.0,
    ) -> None:
        self._backend = backend
        self.w3: Web3 = backend.w3
        self.chain_id: int = int(self.w3.eth.chain_id)
        self.accounts: list[LocalAccount] = list(accounts)
        self.deployer: LocalAccount = deployer
        self.priority_fee_wei = priority_fee_wei
        self.receipt_timeout = receipt_timeout

    @property
    def backend(self) -> str:
        return self._backend.name

    @property
    def url(self) -> str | None:
        """The node's JSON-RPC URL (anvil), or None for the in-process eth-tester chain."""
        return getattr(self._backend, "url", None)

    @property
    def pid(self) -> int | None:
        """The node's process id (anvil), or None for the in-process eth-tester chain."""
        process = getattr(self._backend, "process", None)
        return None if process is None else process.pid

    def __repr__(self) -> str:
        return f"<LocalChain backend={self.backend!r} chain_id={self.chain_id} block={self.w3.eth.block_number}>"

    # -- transactions ---------------------------------------------------------------

    def send(self, tx: Mapping[str, Any], account: LocalAccount) -> Any:
        """Fill, sign locally with ``account``, send raw, wait, and return the receipt.

        Fills ``chainId``, ``nonce``, EIP-1559 fees (unless ``gasPrice`` is given) and ``gas``
        (estimate + 25 %) when missing. An ``authorizationList`` of signed authorizations
        (``Account.sign_authorization``) makes it a type-4 transaction. If ``gas`` is not
        given and the transaction would revert, the estimate raises; with an explicit
        ``gas`` a reverting transaction is mined and its receipt (``status == 0``) returned.
        """
        tx = dict(tx)
        sender = tx.pop("from", None)
        if sender is not None and to_checksum_address(sender) != account.address:
            raise ValueError(f"tx 'from' {sender} is not the signing account {account.address}")
        tx.setdefault("maxPriorityFeePerGas", self.priority_fee_wei)
        return send_transaction(self.w3, account, tx, check_status=False, timeout=self.receipt_timeout)

    def deploy_create2(
        self,
        artifact: ArtifactLike,
        salt: bytes | int = 0,
        constructor_args: Sequence[Any] | bytes | None = None,
        *,
        sender: LocalAccount | None = None,
    ) -> ChecksumAddress:
        """Deploy through :data:`CREATE2_DEPLOYER`; idempotent.

        ``artifact`` is an artifact name (``artifacts.load``) or an artifact dict. If code
        already exists at the CREATE2 address, nothing is sent. Raises
        :class:`LocalChainError` if the deployment fails or leaves no code.
        """
        code = init_code(artifact, constructor_args)
        salt32 = _salt_bytes(salt)
        address = create2_address(CREATE2_DEPLOYER, salt32, code)
        if self.w3.eth.get_code(address):
            return address
        sender = sender or self.deployer
        try:
            receipt = self.send({"to": CREATE2_DEPLOYER, "data": salt32 + code}, sender)
        except Exception as exc:  # estimate reverts: constructor reverted or out of gas
            raise LocalChainError(f"CREATE2 deployment to {address} failed: {exc}") from exc
        if receipt["status"] != 1 or not self.w3.eth.get_code(address):
            raise LocalChainError(f"CREATE2 deployment to {address} left no code (status {receipt['status']})")
        return address

    # -- time, blocks, snapshots -------------------------------------------------------

    def time(self) -> int:
        """Timestamp of the latest mined block."""
        return self._backend.time()

    def set_next_block_timestamp(self, timestamp: int) -> None:
        """The next mined block (next transaction or :meth:`mine`) gets exactly ``timestamp``.

        Must be strictly greater than :meth:`time`. Discarded by :meth:`revert`.
        """
        latest = self.time()
        if int(timestamp) <= latest:
            raise ValueError(f"next block timestamp {timestamp} must be > latest block timestamp {latest}")
        self._backend.set_next_block_timestamp(int(timestamp))

    def mine(self, n: int = 1) -> int:
        """Mine ``n`` empty blocks; return the new latest block number."""
        if n < 1:
            raise ValueError("n must be >= 1")
        self._backend.mine(n)
        return int(self.w3.eth.block_number)

    def snapshot(self) -> int:
        """Record the current state; return an id for :meth:`revert`."""
        return self._backend.snapshot()

    def revert(self, snapshot_id: int) -> None:
        """Return to snapshot ``snapshot_id``. Ids stay valid: revert to one as often as you like."""
        self._backend.revert(snapshot_id)

    def close(self) -> None:
        self._backend.close()

    def __enter__(self) -> LocalChain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- start-up


def _deploy_canonical(chain: LocalChain) -> None:
    if not chain.w3.eth.get_code(CREATE2_DEPLOYER):
        raise LocalChainError(f"no deterministic deployment proxy at {CREATE2_DEPLOYER}")
    for name, salt, expected in (
        ("vendor/EntryPoint", ENTRY_POINT_SALT, ENTRY_POINT_V08),
        ("vendor/Simple7702Account", 0, SIMPLE7702_ADDRESS),
    ):
        predicted = create2_address(CREATE2_DEPLOYER, salt, init_code(name))
        if predicted != expected:
            raise LocalChainError(
                f"{name} artifact would deploy to {predicted}, not the canonical {expected}: "
                "the vendored creation bytecode is not the @account-abstraction/contracts@0.8.0 one"
            )
        address = chain.deploy_create2(name, salt)
        if address != expected:  # pragma: no cover - guarded above
            raise LocalChainError(f"{name} landed at {address}, expected {expected}")
    if chain.deploy_smartkeys:
        from smartkeys.deployments import SMARTKEYS_SALT, account_address

        address = chain.deploy_create2("SmartKeysAccount", SMARTKEYS_SALT)
        if address != account_address():  # pragma: no cover - same formula
            raise LocalChainError(f"SmartKeysAccount landed at {address}, expected {account_address()}")


def start_local_chain(
    backend: str = "eth-tester",
    *,
    num_accounts: int = DEFAULT_NUM_ACCOUNTS,
    balance_wei: int = DEFAULT_BALANCE_WEI,
    gas_limit: int = DEFAULT_GAS_LIMIT,
    deploy_extra: DeployHook | Iterable[DeployHook] | None = None,
    deploy_smartkeys: bool = True,
    **kw: Any,
) -> LocalChain:
    """Start a local Prague chain with EntryPoint v0.8, Simple7702Account and smartkeys deployed.

    ``num_accounts`` funded test accounts (anvil's default keys) get ``balance_wei`` each;
    the smartkeys account implementation is deployed at its deterministic address unless
    ``deploy_smartkeys`` is False; ``deploy_extra`` is a callable, or an iterable of callables, run with the chain after
    the canonical deployments (e.g. to deploy smartkeys contracts). Extra keywords go to the
    backend (eth-tester: ``exact_gas_estimates=True``).
    """
    if num_accounts < 1:
        raise ValueError("num_accounts must be >= 1")
    factory = _BACKENDS.get(backend)
    if factory is None:
        raise ValueError(f"unknown backend {backend!r}; choose from {sorted(_BACKENDS)}")

    keys = _test_private_keys(num_accounts + 1)
    impl = factory(keys, listed_keys=keys[:num_accounts], balance_wei=balance_wei, gas_limit=gas_limit, **kw)
    accounts = [Account.from_key(k) for k in keys]
    chain = LocalChain(impl, accounts[:num_accounts], accounts[num_accounts])
    chain.deploy_smartkeys = deploy_smartkeys
    _deploy_canonical(chain)
    if deploy_extra is not None:
        hooks = [deploy_extra] if callable(deploy_extra) else list(deploy_extra)
        for hook in hooks:
            hook(chain)
    return chain

