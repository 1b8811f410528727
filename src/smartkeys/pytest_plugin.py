"""A pytest plugin for testing an agent against real smartkeys contracts (entry point ``pytest11``).

Installed with smartkeys, it is active in every pytest run (disable it with ``-p no:smartkeys.pytest_plugin``).
Every fixture is prefixed ``smartkeys_``:

- ``smartkeys_chain``: a local chain with EntryPoint v0.8 and smartkeys deployed (a
  :class:`~smartkeys.localchain.LocalChain`), started once per test session and snapshotted around each test,
  so every test starts from the same state. The embedded eth-tester chain by default; a real anvil node with
  ``--smartkeys-chain anvil`` (or ``SMARTKEYS_TEST_CHAIN=anvil``).
- ``smartkeys_owner``: an :class:`~smartkeys.account.Owner` whose EOA (test account 1, funded with ether) is
  delegated to the smartkeys account (EIP-7702).
- ``smartkeys_token``: a 6-decimals ERC-20 "USDC" (a test mock) of which the account holds 1,000,000 USDC;
  its custom errors are registered, so a token refusal is raised as a typed error.
- ``smartkeys_agent``: a factory from a policy to a granted :class:`~smartkeys.account.SessionAgent`:
  ``smartkeys_agent(permissions=..., token_caps=...)`` (a fresh session key, window ``(0, now + 1 day]`` and a
  1 ether gas budget unless given), ``smartkeys_agent(policy, key=key)`` for a
  :class:`~smartkeys.policy_codec.SessionPolicy`, or ``smartkeys_agent("policy.toml", key=key)`` for a policy file
  or :class:`~smartkeys.policy.PolicyModel` (compiled at the chain's time).
- ``smartkeys_bundler``: a funded account (test account 0) that submits self-bundled ``handleOps``:
  ``agent.transfer(..., via="user_op", bundler=smartkeys_bundler)``.
- ``smartkeys_chain_backend``: ``"eth-tester"`` or ``"anvil"``; override it in a conftest to choose in code.
- ``smartkeys_home``: a fresh temporary directory set as ``SMARTKEYS_HOME`` for the test (``smartkeys_chain``
  uses it): the outbox every :class:`~smartkeys.account.SessionAgent` keeps by default and the refusal
  journal's default file go there, never to ``~/.smartkeys``, and (like the chain) nothing of one test is left
  for the next.

The test accounts are the public test mnemonic's keys: local chains only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

__all__: list[str] = []

_BACKENDS = ("eth-tester", "anvil")
ONE_DAY = 86_400
#: What the account holds of ``smartkeys_token``, in base units (1,000,000 USDC).
TOKEN_BALANCE = 10**12


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("smartkeys", "smartkeys test chain")
    group.addoption(
        "--smartkeys-chain", choices=_BACKENDS, default=None,
        help="chain for the smartkeys_* fixtures: the embedded eth-tester (default) or a real anvil node "
             "(also SMARTKEYS_TEST_CHAIN)",
    )


@pytest.fixture(scope="session")
def smartkeys_chain_backend(request: pytest.FixtureRequest) -> str:
    """``--smartkeys-chain``, else ``SMARTKEYS_TEST_CHAIN``, else ``"eth-tester"``."""
    chosen = request.config.getoption("--smartkeys-chain") or os.environ.get("SMARTKEYS_TEST_CHAIN") or "eth-tester"
    if chosen not in _BACKENDS:
        raise pytest.UsageError(f"SMARTKEYS_TEST_CHAIN={chosen!r}: expected one of {', '.join(_BACKENDS)}")
    return chosen


@pytest.fixture(scope="session")
def smartkeys_local_chain(smartkeys_chain_backend: str) -> Iterator[Any]:
    """The session's chain, started once (use ``smartkeys_chain`` in tests: it is reset after each one)."""
    from smartkeys.localchain import start_local_chain

    chain = start_local_chain(smartkeys_chain_backend)
    try:
        yield chain
    finally:
        chain.close()


@pytest.fixture
def smartkeys_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A fresh temporary ``SMARTKEYS_HOME`` for this test (a :class:`pathlib.Path`); restored afterwards."""
    home = tmp_path_factory.mktemp("smartkeys-home")
    monkeypatch.setenv("SMARTKEYS_HOME", str(home))
    return home


@pytest.fixture
def smartkeys_chain(smartkeys_local_chain: Any, smartkeys_home: Any) -> Iterator[Any]:
    """The local chain, reverted to its state before the test when the test ends (with a fresh
    ``smartkeys_home``: the outbox of intents sent on a reverted chain goes with it)."""
    snapshot_id = smartkeys_local_chain.snapshot()
    try:
        yield smartkeys_local_chain
    finally:
        smartkeys_local_chain.revert(snapshot_id)


@pytest.fixture
def smartkeys_bundler(smartkeys_chain: Any) -> Any:
    """Test account 0: submits self-bundled ``handleOps`` transactions (and is refunded by the EntryPoint)."""
    return smartkeys_chain.accounts[0]


@pytest.fixture
def smartkeys_owner(smartkeys_chain: Any) -> Any:
    """Test account 1 (funded) delegated to the smartkeys account, as an :class:`~smartkeys.account.Owner`."""
    from smartkeys.account import Owner

    owner = Owner(smartkeys_chain.w3, smartkeys_chain.accounts[1])
    owner.delegate()
    return owner


@pytest.fixture
def smartkeys_token(smartkeys_chain: Any, smartkeys_owner: Any) -> Any:
    """A 6-decimals mock ERC-20 ("USD Coin", "USDC") as a web3 contract; the account holds 1,000,000 USDC."""
    from smartkeys import artifacts
    from smartkeys.errors import register_contract_errors

    abi = artifacts.load("test/MockERC20")["abi"]
    address = smartkeys_chain.deploy_create2("test/MockERC20", 0x5EC1, ["USD Coin", "USDC", 6])
    contract = smartkeys_chain.w3.eth.contract(address=address, abi=abi)
    register_contract_errors(abi)
    smartkeys_chain.send({"to": address, "data": contract.encode_abi("mint", [smartkeys_owner.address, TOKEN_BALANCE])},
                         smartkeys_chain.accounts[8])
    return contract


@pytest.fixture
def smartkeys_agent(smartkeys_chain: Any, smartkeys_owner: Any) -> Any:
    """``smartkeys_agent(policy=None, *, key=None, **fields) -> SessionAgent``, granted by ``smartkeys_owner``.

    - no ``policy``: ``SessionPolicy(key=..., **fields)`` with ``valid_after=0``, ``valid_until=now + 1 day``
      and ``gas_budget=10**18`` wei unless given; ``key`` defaults to a fresh ``Account.create()``;
    - a ``SessionPolicy``: granted as it is; ``key`` (its session key) is required;
    - a policy file path or a ``PolicyModel``: compiled at the chain's latest block time; ``key`` is required.

    Raises :class:`~smartkeys.errors.InvalidInputError` on a policy/key mismatch or bad fields (before granting).
    """
    from eth_account import Account

    from smartkeys.account import SessionAgent
    from smartkeys.errors import InvalidInputError
    from smartkeys.policy_codec import SessionPolicy

    def make(policy: Any = None, *, key: Any = None, **fields: Any) -> Any:
        if policy is None:
            key = key if key is not None else Account.create()
            fields.setdefault("valid_after", 0)
            fields.setdefault("valid_until", smartkeys_chain.time() + ONE_DAY)
            fields.setdefault("gas_budget", 10**18)
            policy = SessionPolicy(key=key.address, **fields)
        else:
            if fields:
                raise InvalidInputError(f"{sorted(fields)[0]}", fields[sorted(fields)[0]],
                                        "policy fields only without a policy", "put the field in the policy")
            if key is None:
                raise InvalidInputError("key", None, "the policy's session key (a LocalAccount)",
                                        "pass key=... (the account whose address is the policy's key)")
            if not isinstance(policy, SessionPolicy):
                from smartkeys.policy import PolicyModel, load_policy

                model = policy if isinstance(policy, PolicyModel) else load_policy(policy)
                policy = model.compile(now=int(smartkeys_chain.w3.eth.get_block("latest")["timestamp"]))
        if key.address != policy.key:
            raise InvalidInputError("key", key.address, f"the policy's session key {policy.key}",
                                    "pass the key whose address the policy names")
        smartkeys_owner.grant(policy)
        return SessionAgent(smartkeys_chain.w3, smartkeys_owner.address, key, policy)

    return make
