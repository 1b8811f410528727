"""Fixtures for the command-line tests: ``main()`` runs in-process on the embedded chain (``chain`` fixture).

- ``cli(*argv, stdin=..., env=...)`` runs ``smartkeys ARGV`` with the test chain's ``Web3`` injected and returns a
  :class:`Run` (``code``, ``out``, ``err``, ``json``). The working directory is a temporary directory; the
  environment holds only what the fixture sets (home, owner keystore, password), plus ``env``.
- ``owner_keystore`` / ``agent``: keystores (light scrypt, mode 0600) of accounts[1] (the owner EOA) and of a
  fresh, funded session key.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PASSWORD = "correct horse battery staple"


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)


class TTYInput(io.StringIO):
    """A stdin that claims to be a terminal, with scripted answers."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def tty():
    """``tty("y\\n")``: a stdin that is a terminal, with the given answers."""
    return TTYInput


@pytest.fixture
def home(tmp_path) -> Path:
    path = tmp_path / "home"
    (path / "keys").mkdir(parents=True, mode=0o700)
    return path


@pytest.fixture
def owner_keystore(chain, home) -> Path:
    from smartkeys.keystore import save_keystore

    return save_keystore(chain.accounts[1], home / "keys" / "owner.json", PASSWORD, scrypt_n=2**14)


@pytest.fixture
def base_env(home, owner_keystore) -> dict[str, str]:
    return {
        "SMARTKEYS_HOME": str(home),
        "SMARTKEYS_KEYSTORE": str(owner_keystore),
        "SMARTKEYS_PASSWORD": PASSWORD,
        "HOME": str(home.parent),
    }


@pytest.fixture
def cli(chain, tmp_path, monkeypatch, base_env):
    from smartkeys.cli import main

    monkeypatch.chdir(tmp_path)

    def run(*argv: str, stdin: io.StringIO | None = None, env: dict[str, str] | None = None,
            drop: tuple[str, ...] = ()) -> Run:
        environment = {k: v for k, v in {**base_env, **(env or {})}.items() if k not in drop}
        out, err = io.StringIO(), io.StringIO()
        code = main(list(argv), web3=chain.w3, stdin=stdin or io.StringIO(""), stdout=out, stderr=err,
                    env=environment)
        return Run(code, out.getvalue(), err.getvalue())

    return run


@pytest.fixture
def owner_address(chain) -> str:
    return chain.accounts[1].address


@pytest.fixture
def delegated(cli, owner_address):
    result = cli("delegate")
    assert result.code == 0, result.err
    return owner_address


@pytest.fixture
def agent(chain, home, fund):
    """A fresh session key, funded with 1 ether, saved as the keystore labelled 'agent'."""
    from smartkeys.keystore import generate_key, save_keystore

    key = generate_key()
    save_keystore(key, home / "keys" / "agent.json", PASSWORD, scrypt_n=2**14)
    fund(key.address, 10**18)
    return key


@pytest.fixture
def usdc(chain, deploy, owner_address):
    """A 6-decimals MockERC20; the owner account holds 1,000,000 USDC."""
    from smartkeys.errors import register_contract_errors

    contract = deploy("test/MockERC20", ["USD Coin", "USDC", 6])
    register_contract_errors(contract.abi)
    chain.send({"to": contract.address, "data": contract.encode_abi("mint", [owner_address, 10**12])},
               chain.accounts[8])
    return contract


@pytest.fixture
def policy_file(tmp_path, agent, usdc) -> Path:
    path = tmp_path / "agent-policy.toml"
    path.write_text(f'''
key = "{agent.address}"
valid_for = "24h"

[tokens.USDC]
address = "{usdc.address}"
decimals = 6

[[allow]]
contract = "USDC"
functions = ["transfer(address,uint256)"]

[limits]
max_uses = 5
gas_budget = "0.05 ether"

[limits.tokens.USDC]
total = "100 USDC"
''')
    return path


@pytest.fixture
def granted(cli, delegated, policy_file) -> str:
    result = cli("--json", "grant", "--policy", str(policy_file))
    assert result.code == 0, result.err
    return result.json["session_id"]
