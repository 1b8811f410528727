"""``smartkeys deploy`` as an operator runs it, against a fresh bare anvil node.

Each test starts its own anvil (npm ``@foundry-rs/anvil-linux-amd64``, Prague) on a free loopback port, with
nothing deployed but what anvil ships (the deterministic deployment proxy), and runs the real command in a
subprocess. The deployer is anvil's dev account #1, given as an env key or an encrypted keystore.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from smartkeys import artifacts
from smartkeys.deploy import (
    CREATE2_DEPLOYER_RUNTIME,
    EXIT_CHAIN_MISMATCH,
    EXIT_CODE_MISMATCH,
    EXIT_KEY,
    EXIT_NO_DEPLOYER,
    code_matches,
)
from smartkeys.deployments import CREATE2_DEPLOYER, ENTRY_POINT_V08, account_address
from smartkeys.keystore import save_keystore
from smartkeys.localchain import find_anvil

REPO = Path(__file__).resolve().parents[2]
CHAIN_ID = 31337
# anvil's dev account #1 (public test key of the "test test ... junk" mnemonic)
DEPLOYER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
DEPLOYER = Account.from_key(DEPLOYER_KEY).address
KEY_HEX = DEPLOYER_KEY[2:]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def anvil():
    """A fresh, bare anvil: (url, w3). Stopped (by its pid) after the test."""
    port = _free_port()
    proc = subprocess.Popen(
        [find_anvil(), "--host", "127.0.0.1", "--port", str(port), "--hardfork", "prague",
         "--chain-id", str(CHAIN_ID), "--silent"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    w3 = Web3(Web3.HTTPProvider(url))
    deadline = time.monotonic() + 20
    while True:
        assert proc.poll() is None, f"anvil exited: {proc.stderr.read().decode(errors='replace')}"
        try:
            if w3.eth.chain_id == CHAIN_ID:
                break
        except Exception:  # noqa: BLE001 - not listening yet
            pass
        assert time.monotonic() < deadline, "anvil did not start within 20 s"
        time.sleep(0.05)
    try:
        yield url, w3
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def run_deploy(*args: str, env: dict[str, str] | None = None, key: str | None = DEPLOYER_KEY) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTKEYS_")}
    full_env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + full_env.get("PYTHONPATH", "")
    if key is not None:
        full_env["SMARTKEYS_DEPLOYER_KEY"] = key
    full_env.update(env or {})
    result = subprocess.run(
        [sys.executable, "-m", "smartkeys", "deploy", *args], capture_output=True, text=True, timeout=120,
        env=full_env, stdin=subprocess.DEVNULL,
    )
    output = result.stdout + result.stderr
    assert KEY_HEX not in output.lower(), "the deployer key was printed"
    return result


def test_first_run_deploys_and_second_run_sends_nothing(anvil, tmp_path):
    url, w3 = anvil
    assert not w3.eth.get_code(ENTRY_POINT_V08), "anvil should start without EntryPoint"
    assert w3.eth.get_code(CREATE2_DEPLOYER) == CREATE2_DEPLOYER_RUNTIME
    out_dir = tmp_path / "deployments"

    first = run_deploy("--rpc-url", url, "--chain-id", str(CHAIN_ID), "--out-dir", str(out_dir), "--json")
    assert first.returncode == 0, first.stdout + first.stderr
    report = json.loads(first.stdout)
    assert report["sent"] == 2
    assert "waiting for the receipt" in first.stderr

    entry_point_code = bytes(w3.eth.get_code(ENTRY_POINT_V08))
    ep_runtime = bytes.fromhex(artifacts.load("vendor/EntryPoint")["deployedBytecode"][2:])
    assert code_matches(entry_point_code, ep_runtime, immutables=True)
    account_code = bytes(w3.eth.get_code(account_address()))
    assert account_code == bytes.fromhex(artifacts.load("SmartKeysAccount")["deployedBytecode"][2:])
    assert w3.eth.get_transaction_count(DEPLOYER) == 2

    written = json.loads((out_dir / f"{CHAIN_ID}.json").read_text())
    assert written["chain_id"] == CHAIN_ID
    assert written["deployer"] == DEPLOYER
    assert written["compiler"].startswith("0.8.30+commit.")
    for name, address in (("EntryPoint", ENTRY_POINT_V08), ("SmartKeysAccount", account_address())):
        entry = written["contracts"][name]
        assert entry["address"] == address and entry["status"] == "deployed"
        receipt = w3.eth.get_transaction_receipt(entry["tx_hash"])
        assert receipt["status"] == 1 and receipt["blockNumber"] == entry["block"]
        assert len(entry["artifact_sha256"]) == 64 and entry["init_code_hash"].startswith("0x")
    first_hashes = {n: e["tx_hash"] for n, e in written["contracts"].items()}

    block = w3.eth.block_number
    second = run_deploy("--rpc-url", url, "--chain-id", str(CHAIN_ID), "--out-dir", str(out_dir))
    assert second.returncode == 0, second.stdout + second.stderr
    assert "nothing deployed: all contracts already deployed" in second.stdout
    assert "EntryPoint: already deployed" in second.stderr
    assert w3.eth.get_transaction_count(DEPLOYER) == 2, "the second run sent a transaction"
    assert w3.eth.block_number == block
    rewritten = json.loads((out_dir / f"{CHAIN_ID}.json").read_text())
    assert {n: e["status"] for n, e in rewritten["contracts"].items()} == {
        "EntryPoint": "already deployed", "SmartKeysAccount": "already deployed"}
    assert {n: e["tx_hash"] for n, e in rewritten["contracts"].items()} == first_hashes


def test_wrong_chain_id_is_refused_before_anything_is_sent(anvil, tmp_path):
    url, w3 = anvil
    result = run_deploy("--rpc-url", url, "--expect-chain-id", "1", "--out-dir", str(tmp_path))
    assert result.returncode == EXIT_CHAIN_MISMATCH
    assert "expected chain 1" in result.stderr and "got chain 31337" in result.stderr
    assert w3.eth.get_transaction_count(DEPLOYER) == 0
    assert w3.eth.block_number == 0
    assert not w3.eth.get_code(ENTRY_POINT_V08)
    assert not list(tmp_path.iterdir()), "a deployments file was written"


def test_chain_id_is_required(anvil):
    url, w3 = anvil
    result = run_deploy("--rpc-url", url)
    assert result.returncode == 2
    assert "--chain-id" in result.stderr
    assert w3.eth.get_transaction_count(DEPLOYER) == 0


def test_dry_run_sends_nothing_and_shows_the_transactions(anvil, tmp_path):
    url, w3 = anvil
    result = run_deploy("--rpc-url", url, "--chain-id", str(CHAIN_ID), "--out-dir", str(tmp_path), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert f"would deploy to {ENTRY_POINT_V08}" in result.stderr
    assert f"would deploy to {account_address()}" in result.stderr
    assert "2 transaction(s) would be sent, none was" in result.stdout
    assert w3.eth.get_transaction_count(DEPLOYER) == 0 and not w3.eth.get_code(ENTRY_POINT_V08)
    assert not list(tmp_path.iterdir())


def test_keystore_with_password_from_env_deploys(anvil, tmp_path):
    url, w3 = anvil
    keystore = save_keystore(Account.from_key(DEPLOYER_KEY), tmp_path / "deployer.json", "correct horse", scrypt_n=2**14)
    result = run_deploy(
        "--rpc-url", url, "--chain-id", str(CHAIN_ID), "--keystore", str(keystore), "--out-dir", str(tmp_path / "out"),
        key=None, env={"SMARTKEYS_PASSWORD": "correct horse"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"deployer {DEPLOYER}" in result.stderr
    assert w3.eth.get_transaction_count(DEPLOYER) == 2
    assert w3.eth.get_code(account_address())


def test_bad_keystore_password_is_a_clear_error_and_sends_nothing(anvil, tmp_path):
    url, w3 = anvil
    keystore = save_keystore(Account.from_key(DEPLOYER_KEY), tmp_path / "deployer.json", "correct horse", scrypt_n=2**14)
    result = run_deploy(
        "--rpc-url", url, "--chain-id", str(CHAIN_ID), "--keystore", str(keystore), "--out-dir", str(tmp_path / "out"),
        key=None, env={"SMARTKEYS_PASSWORD": "wrong"},
    )
    assert result.returncode == EXIT_KEY
    assert f"wrong password for keystore {keystore}" in result.stderr
    assert "Traceback" not in result.stderr
    assert w3.eth.get_transaction_count(DEPLOYER) == 0


def test_keystore_without_password_and_without_terminal_asks_for_the_env_var(anvil, tmp_path):
    url, w3 = anvil
    keystore = save_keystore(Account.from_key(DEPLOYER_KEY), tmp_path / "deployer.json", "pw", scrypt_n=2**14)
    result = run_deploy("--rpc-url", url, "--chain-id", str(CHAIN_ID), "--keystore", str(keystore), key=None)
    assert result.returncode == EXIT_KEY
    assert "SMARTKEYS_PASSWORD" in result.stderr


def test_missing_key_is_refused_with_the_two_ways_to_give_one(anvil, tmp_path):
    url, w3 = anvil
    result = run_deploy("--rpc-url", url, "--chain-id", str(CHAIN_ID), "--out-dir", str(tmp_path), key=None)
    assert result.returncode == EXIT_KEY
    assert "--keystore" in result.stderr and "SMARTKEYS_DEPLOYER_KEY" in result.stderr
    bad = run_deploy("--rpc-url", url, "--chain-id", str(CHAIN_ID), "--out-dir", str(tmp_path), key="0x1234")
    assert bad.returncode == EXIT_KEY and "value not shown" in bad.stderr


def test_chain_without_deterministic_deployer_explains_the_fix(anvil, tmp_path):
    url, w3 = anvil
    w3.provider.make_request("anvil_setCode", [CREATE2_DEPLOYER, "0x"])
    result = run_deploy("--rpc-url", url, "--chain-id", str(CHAIN_ID), "--out-dir", str(tmp_path))
    assert result.returncode == EXIT_NO_DEPLOYER
    assert "no deterministic deployment proxy" in result.stderr
    assert "0x3fab184622dc19b6109349b94811493bf2a45362".lower() in result.stderr.lower()
    assert w3.eth.get_transaction_count(DEPLOYER) == 0


def test_other_code_at_the_account_address_is_refused(anvil, tmp_path):
    url, w3 = anvil
    w3.provider.make_request("anvil_setCode", [account_address(), "0x6001600055"])
    result = run_deploy("--rpc-url", url, "--chain-id", str(CHAIN_ID), "--out-dir", str(tmp_path))
    assert result.returncode == EXIT_CODE_MISMATCH
    assert f"SmartKeysAccount expected at {account_address()}" in result.stderr
    assert w3.eth.get_transaction_count(DEPLOYER) == 0 and not w3.eth.get_code(ENTRY_POINT_V08)
