"""The pytest plugin's fixtures (this suite loads the plugin through tests/conftest.py), and the plugin as a user
gets it: a fresh pytest process whose test file uses only ``smartkeys_*`` fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account

from smartkeys.account import SessionAgent
from smartkeys.errors import InvalidInputError, get_error_class
from smartkeys.policy_codec import Permission, PermissionMode, SessionPolicy, TokenCap

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
RECIPIENT = "0x000000000000000000000000000000000000bEEF"
USDC = 10**6


def test_entry_point_is_declared_under_the_modules_own_name():
    entry_points = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["pytest11"]
    assert entry_points == {"smartkeys.pytest_plugin": "smartkeys.pytest_plugin"}


def test_owner_is_delegated_and_funded_and_holds_the_token(smartkeys_chain, smartkeys_owner, smartkeys_token):
    w3 = smartkeys_chain.w3
    assert smartkeys_owner.delegation() is not None
    assert w3.eth.get_balance(smartkeys_owner.address) > 10**18
    assert smartkeys_token.functions.balanceOf(smartkeys_owner.address).call() == 10**6 * USDC
    assert smartkeys_token.functions.decimals().call() == 6


def test_agent_from_fields_gets_a_fresh_key_and_a_granted_session(smartkeys_agent, smartkeys_token,
                                                                   smartkeys_bundler):
    usdc = smartkeys_token.address
    agent = smartkeys_agent(permissions=(Permission(usdc, "transfer(address,uint256)"),),
                            token_caps=(TokenCap(usdc, 5 * USDC),))
    assert isinstance(agent, SessionAgent) and agent.session_state().live
    agent.transfer(usdc, RECIPIENT, 2 * USDC, via="user_op", bundler=smartkeys_bundler)
    with pytest.raises(get_error_class("TokenSpendCapExceeded")) as info:
        agent.transfer(usdc, RECIPIENT, 4 * USDC, via="user_op", bundler=smartkeys_bundler)
    assert (info.value.spent, info.value.cap) == (2 * USDC, 5 * USDC)


def test_agent_from_a_policy_object_and_from_a_policy_file(smartkeys_agent, smartkeys_chain, smartkeys_token,
                                                            tmp_path):
    key = Account.create()
    policy = SessionPolicy(key=key.address, valid_after=0, valid_until=smartkeys_chain.time() + 60,
                           gas_budget=10**16, native_per_call=10**15, native_total=10**15,
                           permissions=(Permission(RECIPIENT, mode=PermissionMode.EMPTY_CALLDATA),))
    assert smartkeys_agent(policy, key=key).policy == policy

    file_key = Account.create()
    path = tmp_path / "policy.toml"
    path.write_text(f'key = "{file_key.address}"\nvalid_for = "1h"\n[tokens.USDC]\naddress = '
                    f'"{smartkeys_token.address}"\ndecimals = 6\n[[allow]]\ncontract = "USDC"\n'
                    'functions = ["transfer(address,uint256)"]\n[limits.tokens.USDC]\ntotal = "3 USDC"\n')
    agent = smartkeys_agent(str(path), key=file_key)
    assert agent.policy.token_caps[0].cap == 3 * USDC and agent.session_state().live


def test_agent_factory_refuses_mismatched_or_missing_keys_before_granting(smartkeys_agent, smartkeys_chain,
                                                                          smartkeys_owner):
    key = Account.create()
    policy = SessionPolicy(key=key.address, valid_after=0, valid_until=smartkeys_chain.time() + 60)
    with pytest.raises(InvalidInputError, match="key"):
        smartkeys_agent(policy)
    with pytest.raises(InvalidInputError, match="session key"):
        smartkeys_agent(policy, key=Account.create())
    with pytest.raises(InvalidInputError, match="max_uses"):
        smartkeys_agent(policy, key=key, max_uses=3)
    assert smartkeys_owner.sessions() == []


def test_project_chain_option_and_plugin_fixtures_are_the_same_chain(chain, smartkeys_chain, chain_backend,
                                                                     smartkeys_chain_backend, request):
    assert chain is smartkeys_chain and chain_backend == smartkeys_chain_backend
    asked = request.config.getoption("--chain") or request.config.getoption("--smartkeys-chain")
    if asked:  # `--chain anvil` (or --smartkeys-chain anvil) really gives anvil
        assert smartkeys_chain.backend == asked
    else:
        assert smartkeys_chain.backend == os.environ.get("SMARTKEYS_TEST_CHAIN", "eth-tester")


USER_TEST = '''
import pytest
from smartkeys.errors import get_error_class
from smartkeys.policy_codec import Permission, TokenCap

def test_cap_holds(smartkeys_agent, smartkeys_token, smartkeys_bundler, smartkeys_chain_backend, smartkeys_home):
    usdc = smartkeys_token.address
    agent = smartkeys_agent(permissions=(Permission(usdc, "transfer(address,uint256)"),),
                            token_caps=(TokenCap(usdc, 10**6),))
    with pytest.raises(get_error_class("TokenSpendCapExceeded")):
        agent.transfer(usdc, "0x000000000000000000000000000000000000bEEF", 2 * 10**6, via="user_op",
                       bundler=smartkeys_bundler)
    agent.transfer(usdc, "0x000000000000000000000000000000000000bEEF", 10**6, via="user_op",
                   bundler=smartkeys_bundler)
    # the agent's default outbox is in a temporary smartkeys_home, never the user's ~/.smartkeys
    import os, tempfile
    assert agent.outbox.path.is_file() and agent.outbox.path.parent == smartkeys_home
    assert agent.outbox.path.is_relative_to(tempfile.gettempdir()) and os.environ["SMARTKEYS_HOME"] == str(smartkeys_home)
    print("backend", smartkeys_chain_backend)
'''


@pytest.mark.parametrize("argv,backend", [([], "eth-tester"), (["--smartkeys-chain", "anvil"], "anvil")])
def test_a_users_project_gets_the_fixtures_from_the_plugin(tmp_path, argv, backend):
    if backend == "anvil":
        from smartkeys.localchain import LocalChainError, find_anvil

        try:
            find_anvil()
        except LocalChainError as exc:  # pragma: no cover - anvil comes with `npm ci`
            pytest.skip(f"needs anvil: {exc}")
    (tmp_path / "test_user.py").write_text(USER_TEST)
    env = {k: v for k, v in os.environ.items() if k not in ("SMARTKEYS_TEST_CHAIN", "SMARTKEYS_HOME")}
    user_home = tmp_path / "user-home"  # the user's home: the plugin must leave it alone
    user_home.mkdir()
    env.update(PYTHONPATH=str(ROOT / "src"), PYTEST_ADDOPTS="", HOME=str(user_home))
    # -p names the plugin for checkouts where the package's entry points are not installed; when they are,
    # the entry point registers it under the same name and -p is a no-op.
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
                             "-p", "smartkeys.pytest_plugin", *argv, "test_user.py"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout and f"backend {backend}" in result.stdout
    assert not (user_home / ".smartkeys").exists()


@pytest.mark.parametrize("conftest", ["", 'pytest_plugins = ["smartkeys.pytest_plugin"]\n'])
def test_the_pytest11_entry_point_loads_the_plugin_once(tmp_path, conftest):
    """pyproject's entry point, as an installed distribution exposes it (a dist-info on the path), loads the
    plugin with no -p; a conftest that also names it (as this project's does) does not register it twice."""
    entry_points = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["pytest11"]
    dist = tmp_path / "site" / "smartkeys_entry_point_probe-0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: smartkeys-entry-point-probe\nVersion: 0\n")
    (dist / "entry_points.txt").write_text("[pytest11]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_user.py").write_text(USER_TEST)
    (project / "conftest.py").write_text(conftest)
    env = {k: v for k, v in os.environ.items() if k not in ("SMARTKEYS_TEST_CHAIN", "PYTEST_DISABLE_PLUGIN_AUTOLOAD")}
    env.update(PYTHONPATH=os.pathsep.join([str(tmp_path / "site"), str(ROOT / "src")]), PYTEST_ADDOPTS="")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "test_user.py"],
                            cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout and "backend eth-tester" in result.stdout
