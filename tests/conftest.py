"""Shared pytest fixtures, on top of smartkeys' own pytest plugin (``smartkeys.pytest_plugin``).

- ``local_chain`` (session): the plugin's ``smartkeys_local_chain``: one chain with EntryPoint v0.8,
  Simple7702Account and smartkeys at their canonical addresses, started once per test session.
- ``chain`` (function): the plugin's ``smartkeys_chain``: the same chain, snapshotted before the test and
  reverted after it, so every test starts from the same state (nonces, balances, code, time) and stays fast.
- ``accounts``: the chain's funded test accounts (``eth_account`` ``LocalAccount`` objects).
- ``--chain eth-tester|anvil`` (this project's option) is the plugin's ``--smartkeys-chain``; either works.

Time: ``chain.set_next_block_timestamp(ts)`` fixes the next *mined* block's timestamp, but on eth-tester
gas estimation (where direct-path refusals and AAxx validation failures are raised) runs at
latest + 1 whatever was set. To have both at exactly ``ts``, mine a block at ``ts - 1`` first.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

try:  # run from a plain checkout (package not installed): use src/
    import smartkeys  # noqa: F401
except ImportError:  # pragma: no cover
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

# tests/alto.py: the real-bundler fixtures (Alto on its own anvil). The plugin is also this package's pytest11
# entry point, registered under the same name, so naming it here is harmless when it is installed.
pytest_plugins = ["alto", "fault_proxy", "smartkeys.pytest_plugin"]  # tests/fault_proxy.py: the hostile provider


def pytest_configure(config):
    """State the SDK keeps by default (the outbox, the refusal journal) never goes to the user's home: a
    session-wide temporary SMARTKEYS_HOME (for session fixtures and subprocesses), a fresh one per test below."""
    import tempfile

    config._smartkeys_home = (os.environ.get("SMARTKEYS_HOME"), tempfile.mkdtemp(prefix="smartkeys-test-home-"))
    os.environ["SMARTKEYS_HOME"] = config._smartkeys_home[1]


def pytest_unconfigure(config):
    import shutil

    previous, home = getattr(config, "_smartkeys_home", (None, None))
    if home is not None:
        shutil.rmtree(home, ignore_errors=True)
        if previous is None:
            os.environ.pop("SMARTKEYS_HOME", None)
        else:
            os.environ["SMARTKEYS_HOME"] = previous


@pytest.fixture(autouse=True)
def _temporary_smartkeys_home(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SMARTKEYS_HOME", str(tmp_path_factory.mktemp("smartkeys-home")))


def pytest_addoption(parser):
    parser.addoption(
        "--chain",
        choices=("eth-tester", "anvil"),
        default=None,
        help="backend for the chain fixtures: embedded eth-tester (default) or a real anvil node "
             "(the same as --smartkeys-chain; also SMARTKEYS_TEST_CHAIN)",
    )


#: The Ape project's tests. Ape's tests folder is tests/ (fixed in eth-ape 0.8.51: ``project.tests_folder``), and
#: `ape test` runs pytest with this repository's settings (pyproject.toml: testpaths = tests), so each run
#: picks its own tests here: `ape test` only tests/ape, this project's pytest everything but tests/ape.
_APE_TESTS = Path(__file__).resolve().parent / "ape"


def pytest_ignore_collect(collection_path, config):
    # Ape's pytest plugin registers "ape-fixtures" when it configures a run (`ape test`, or pytest in .venv-ape).
    under_ape = config.pluginmanager.has_plugin("ape-fixtures")
    path = Path(collection_path).resolve()
    in_ape_tests = path == _APE_TESTS or _APE_TESTS in path.parents
    if under_ape:
        if in_ape_tests or path == _APE_TESTS.parent or _APE_TESTS.parent not in path.parents:
            return None
        return True  # the project's own suite: needs the main .venv's packages and chain fixtures
    return True if in_ape_tests else None


@pytest.fixture(scope="session")
def smartkeys_chain_backend(request) -> str:
    """``--chain``, else the plugin's ``--smartkeys-chain``, else ``SMARTKEYS_TEST_CHAIN``, else eth-tester."""
    return (request.config.getoption("--chain") or request.config.getoption("--smartkeys-chain")
            or os.environ.get("SMARTKEYS_TEST_CHAIN") or "eth-tester")


@pytest.fixture(scope="session")
def chain_backend(smartkeys_chain_backend) -> str:
    return smartkeys_chain_backend


@pytest.fixture(scope="session")
def local_chain(smartkeys_local_chain):
    return smartkeys_local_chain


@pytest.fixture
def chain(smartkeys_chain):
    return smartkeys_chain


@pytest.fixture
def accounts(chain):
    return chain.accounts


# --------------------------------------------------------------------------- smartkeys fixtures

ONE_DAY = 86_400


@pytest.fixture
def bundler(smartkeys_bundler):
    """A funded EOA that submits self-bundled ``handleOps`` transactions (accounts[0])."""
    return smartkeys_bundler


@pytest.fixture
def owner(smartkeys_owner):
    """accounts[1] delegated to SmartKeysAccount (self-sponsored), as an ``Owner`` client."""
    return smartkeys_owner


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
