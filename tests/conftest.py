"""Shared pytest fixtures.

- ``local_chain`` (session): one embedded chain with EntryPoint v0.8 and Simple7702Account at
  their canonical addresses, started once per test session.
- ``chain`` (function): the same chain, snapshotted before the test and reverted after it, so
  every test starts from the same state (nonces, balances, code, time) and stays fast.
- ``accounts``: the chain's funded test accounts (``eth_account`` ``LocalAccount`` objects).

Time: ``chain.set_next_block_timestamp(ts)`` fixes the next *mined* block's timestamp, but on eth-tester
gas estimation (where direct-path refusals and AAxx validation failures are raised) runs at
latest + 1 whatever was set. To have both at exactly ``ts``, mine a block at ``ts - 1`` first.
"""

from __future__ import annotations

import os
import threading
import sys
from pathlib import Path

import pytest

pytest_plugins = ["alto", "fault_proxy"]  # tests/alto.py: the real bundler; tests/fault_proxy.py: the hostile provider

try:  # run from a plain checkout (package not installed): use src/
    import smartkeys  # noqa: F401
except ImportError:  # pragma: no cover
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def pytest_addoption(parser):
    parser.addoption(
        "--chain",
        choices=("eth-tester", "anvil"),
        default=os.environ.get("SMARTKEYS_TEST_CHAIN", "eth-tester"),
        help="backend for the chain fixtures: embedded eth-tester (default) or a real anvil node",
    )


@pytest.fixture(scope="session")
def chain_backend(request) -> str:
    return request.config.getoption("--chain")


@pytest.fixture(scope="session")
def local_chain(chain_backend):
    from smartkeys.localchain import start_local_chain

    chain = start_local_chain(chain_backend)
    yield chain
    chain.close()


@pytest.fixture
def chain(local_chain):
    snapshot_id = local_chain.snapshot()
    try:
        yield local_chain
    finally:
        local_chain.revert(snapshot_id)


@pytest.fixture
def accounts(chain):
    return chain.accounts


# --------------------------------------------------------------------------- smartkeys fixtures

ONE_DAY = 86_400


@pytest.fixture
def bundler(chain):
    """A funded EOA that submits self-bundled ``handleOps`` transactions."""
    return chain.accounts[0]


@pytest.fixture
def owner(chain):
    """accounts[1] delegated to SmartKeysAccount (self-sponsored), as an ``Owner`` client."""
    from smartkeys.account import Owner

    owner = Owner(chain.w3, chain.accounts[1])
    owner.delegate()
    return owner


@pytest.fixture
def deploy(chain):
    """Deploy a shipped artifact through CREATE2 and return a web3 contract: ``deploy("test/MockERC20", args)``."""
    from smartkeys import artifacts

    counter = iter(range(1, 10_000))

    def _deploy(name, constructor_args=None, salt=None):
        address = chain.deploy_create2(name, next(counter) if salt is None else salt, constructor_args)
        return chain.w3.eth.contract(address=address, abi=artifacts.load(name)["abi"])

    return _deploy


@pytest.fixture
def token(chain, deploy, owner):
    """A 6-decimals MockERC20 ("USDC"); the account holds 1,000,000 USDC; accounts[9] holds 1 unit so that
    transfers to it touch a non-zero balance."""
    from smartkeys.errors import register_contract_errors

    contract = deploy("test/MockERC20", ["USD Coin", "USDC", 6])
    register_contract_errors(contract.abi)
    minter = chain.accounts[8]
    chain.send({"to": contract.address, "data": contract.encode_abi("mint", [owner.address, 10**12])}, minter)
    chain.send({"to": contract.address, "data": contract.encode_abi("mint", [chain.accounts[9].address, 1])}, minter)
    return contract


@pytest.fixture
def session_key():
    """A fresh session key (an agent's key), not funded."""
    from eth_account import Account

    return Account.create()


@pytest.fixture
def fund(chain):
    """Send ether from accounts[7]: ``fund(address, wei)``."""

    def _fund(address, wei=10**18):
        chain.send({"to": address, "value": wei}, chain.accounts[7])

    return _fund


@pytest.fixture
def grant(chain, owner):
    """Grant a policy and return a ``SessionAgent`` for it: ``grant(key, **policy_fields)``.

    Defaults: window (0, now + 1 day], gas budget 1 ether; everything else from the keywords.
    """
    from smartkeys.account import SessionAgent
    from smartkeys.policy_codec import SessionPolicy

    def _grant(key, **fields):
        fields.setdefault("valid_after", 0)
        fields.setdefault("valid_until", chain.time() + ONE_DAY)
        fields.setdefault("gas_budget", 10**18)
        policy = SessionPolicy(key=key.address, **fields)
        owner.grant(policy)
        return SessionAgent(chain.w3, owner.address, key, policy)

    return _grant


@pytest.fixture
def serialized_rpc(chain, chain_backend):
    """Serialize RPC requests on eth-tester (py-evm is not thread-safe); a no-op on anvil."""
    if chain_backend != "eth-tester":
        yield
        return
    provider = chain.w3.provider
    original = provider.make_request
    lock = threading.RLock()

    def locked(method, params):
        with lock:
            return original(method, params)

    provider.make_request = locked
    provider._request_func_cache = (None, None)
    try:
        yield
    finally:
        del provider.make_request
        provider._request_func_cache = (None, None)
