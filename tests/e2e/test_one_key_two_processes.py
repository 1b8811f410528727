"""Two processes on one session key (anvil): direct sends and self-bundled sends.

Same machine (shared lock directory): the processes take turns on the key's nonce (smartkeys.locks), so there
is no conflict at all and no bundle reverts. Two machines (separate lock directories): conflicts happen and
must surface only as the typed, retryable NonceConflictError; every transfer reported done landed once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eth_account import Account

from smartkeys.account import Owner
from smartkeys.errors import register_contract_errors
from smartkeys.policy_codec import Permission, SessionPolicy, TokenCap

CHILD = Path(__file__).with_name("_kill_agent.py")
SRC = Path(__file__).resolve().parents[2] / "src"
OPS = 6


@pytest.fixture(scope="module")
def token(alto_chain):
    from smartkeys import artifacts

    address = alto_chain.deploy_create2("test/MockERC20", 1618, ["USD Coin", "USDC", 6])
    contract = alto_chain.w3.eth.contract(address=address, abi=artifacts.load("test/MockERC20")["abi"])
    register_contract_errors(contract.abi)
    return contract


@pytest.fixture
def session(alto_chain, token):
    eoa = Account.create()
    alto_chain.send({"to": eoa.address, "value": 10 * 10**18}, alto_chain.deployer)
    owner = Owner(alto_chain.w3, eoa)
    owner.delegate()
    alto_chain.send({"to": token.address, "data": token.encode_abi("mint", [owner.address, 10**12])},
                    alto_chain.deployer)
    key = Account.create()
    alto_chain.send({"to": key.address, "value": 10**18}, alto_chain.deployer)
    policy = SessionPolicy(key=key.address, valid_after=0, valid_until=alto_chain.time() + 86_400, gas_budget=10**17,
                           permissions=(Permission(token.address, "transfer(address,uint256)"),),
                           token_caps=(TokenCap(token.address, 10**12),))
    owner.grant(policy)
    return owner, key, policy


def _reverted_txs_from(w3, sender, start):
    reverted = gas = 0
    for number in range(start, w3.eth.block_number + 1):
        for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]:
            if tx["from"] == sender:
                receipt = w3.eth.get_transaction_receipt(tx["hash"])
                if receipt["status"] == 0:
                    reverted += 1
                    gas += receipt["gasUsed"]
    return reverted, gas


@pytest.mark.parametrize("path", ["direct", "self"])
@pytest.mark.parametrize("machines", ["same", "two"])
def test_two_processes_on_one_key(alto_chain, token, session, tmp_path, path, machines):
    owner, key, policy = session
    w3 = alto_chain.w3
    start = w3.eth.block_number
    recipients = [Account.create().address for _ in range(2)]
    procs = []
    start_at = time.time() + 4  # both import smartkeys first, then start together
    for p in range(2):
        lock_dir = tmp_path / ("locks" if machines == "same" else f"locks{p}")
        env = {**os.environ, "PYTHONPATH": str(SRC), "SMARTKEYS_LOCK_DIR": str(lock_dir),
               "START_AT": str(start_at)}
        procs.append(subprocess.Popen(
            [sys.executable, str(CHILD), "none", "loop", str(OPS), alto_chain.url, path, owner.address, key.key.hex(),
             "0x" + policy.session_id.hex(), str(tmp_path / f"outbox{p}.jsonl"), token.address, recipients[p],
             str(1000 * (p + 1))], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    reverted, gas = _reverted_txs_from(w3, key.address, start + 1)
    conflicts = sum(r["conflicts"] for r in results)
    print(f"\n{path}/{machines}: {results}; reverted transactions of the key: {reverted} ({gas} gas)")
    for r in results:
        assert r["untyped"] == [] and r["typed"] == [] and r["ok"] == OPS, r
    for p, to in enumerate(recipients):  # each process's transfers landed exactly once
        assert token.functions.balanceOf(to).call() == sum(1000 * (p + 1) + i for i in range(OPS))
    if machines == "same":
        assert conflicts == 0 and reverted == 0
