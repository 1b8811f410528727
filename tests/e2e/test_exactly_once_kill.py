"""Kill test: an agent process SIGKILLed at each step between signing and receipt, then restarted, pays once.

The child (tests/e2e/_kill_agent.py) sends one token transfer and kills itself at STEP; the restarted agent
sends the very same transfer again (an unnamed intent: what a naive agent loop does). Whatever the step, the
recipient ends with exactly the amount: the outbox entry is settled first (looked up by hash and nonce lane,
the same signed payload re-sent if its nonce was still free) and a landed intent is not sent twice.
Paths: through Alto, self-bundled, and a direct transaction. The CLI is killed after sending and re-run too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account

from smartkeys.account import Owner
from smartkeys.errors import register_contract_errors
from smartkeys.outbox import LANDED, Outbox
from smartkeys.policy_codec import Permission, SessionPolicy, TokenCap

CHILD = Path(__file__).with_name("_kill_agent.py")
SRC = Path(__file__).resolve().parents[2] / "src"
STEPS = ["signed", "recorded", "sent", "landed"]


@pytest.fixture(scope="module")
def token(alto_chain):
    from smartkeys import artifacts

    address = alto_chain.deploy_create2("test/MockERC20", 1617, ["USD Coin", "USDC", 6])
    contract = alto_chain.w3.eth.contract(address=address, abi=artifacts.load("test/MockERC20")["abi"])
    register_contract_errors(contract.abi)
    return contract


@pytest.fixture(scope="module")
def setup(alto_chain, token):
    """A delegated owner holding tokens, and a session key (with 1 ETH for the paths where it pays gas)."""
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


def _child(step, *args, env=None):
    environment = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", **(env or {})}
    return subprocess.run([sys.executable, str(CHILD), step, *args], capture_output=True, text=True, timeout=120,
                          env=environment)


@pytest.mark.parametrize("path", ["bundler", "self", "direct"])
@pytest.mark.parametrize("step", STEPS)
def test_killed_at_each_step_then_restarted_pays_once(alto_chain, alto, token, setup, tmp_path, path, step):
    owner, key, policy = setup
    outbox = tmp_path / "outbox.jsonl"
    to, amount = Account.create().address, 1234
    bundler = {"bundler": alto.url, "self": "self", "direct": "direct"}[path]
    args = ["sdk", alto_chain.url, bundler, owner.address, key.key.hex(), "0x" + policy.session_id.hex(),
            str(outbox), token.address, to, str(amount)]

    first = _child(step, *args)
    assert first.returncode == -9, f"the agent was not killed at {step}: {first.returncode} {first.stdout} {first.stderr}"
    recorded = Outbox(outbox).read()
    assert len(recorded) == (0 if step == "signed" else 1)

    second = _child("none", *args)  # the restarted agent repeats its intent
    balance = token.functions.balanceOf(to).call()
    assert balance == amount, f"killed at {step} on {path}: recipient holds {balance} (amount {amount}); {second.stdout}"
    expected = 0 if step == "signed" else 3  # 3: refused as a duplicate, because it had landed
    assert second.returncode == expected, (second.returncode, second.stdout, second.stderr[-2000:])
    (intent,) = Outbox(outbox).read()
    assert intent.status == LANDED
    if step == "signed":  # nothing had left: the restart sent it and reported it; a repeat is a new payment
        assert intent.acknowledged
        return
    # the landing was never reported as a success: until it is acknowledged (`smartkeys pending --settle`,
    # SessionAgent.settle), the same unnamed call is refused again and again
    assert not intent.acknowledged
    third = _child("none", *args)
    assert third.returncode == 3 and token.functions.balanceOf(to).call() == amount


def test_cli_killed_after_sending_prints_the_hash_and_a_rerun_does_not_pay_twice(alto_chain, alto, token, setup,
                                                                                  tmp_path):
    owner, key, policy = setup
    to = Account.create().address
    home = tmp_path / "home"
    env = {"SMARTKEYS_SESSION_KEY": key.key.hex(), "SMARTKEYS_HOME": str(home)}
    argv = ["cli", "--rpc-url", alto_chain.url, "--bundler-url", alto.url, "--account", owner.address,
            "send", to, "0.5", "--token", token.address]

    first = _child("sent", *argv, env=env)
    assert first.returncode == -9
    assert "sending user operation 0x" in first.stderr, first.stderr  # the hash, printed before it waited
    printed = first.stderr.split("sending user operation ")[1].split()[0]

    pending = _child("none", "cli", "--json", "--home", str(home), "pending", env=env)
    assert pending.returncode == 0 and printed in pending.stdout

    rerun = _child("none", *argv, env=env)
    assert rerun.returncode == 3, rerun.stderr
    assert "already landed" in rerun.stderr and printed in rerun.stderr
    assert token.functions.balanceOf(to).call() == 500_000

    settled = _child("none", "cli", "--rpc-url", alto_chain.url, "--home", str(home), "pending", "--settle", env=env)
    assert settled.returncode == 0 and printed in settled.stdout and "landed" in settled.stdout, settled.stderr
    after = _child("none", "cli", "--home", str(home), "pending", env=env)
    assert after.returncode == 0 and "no unsettled intents" in after.stdout, after.stdout + after.stderr
    # issue 16: "a retry of a settled intent is refused unless asked for by name": settled as landed, the
    # same unnamed command is still refused (naming the hash and --repeat); --repeat pays again on purpose
    again = _child("none", *argv, env=env)
    assert again.returncode == 3 and printed in again.stderr and "--repeat" in again.stderr, again.stderr
    assert token.functions.balanceOf(to).call() == 500_000
    repeat = _child("none", *argv, "--repeat", env=env)
    assert repeat.returncode == 0 and token.functions.balanceOf(to).call() == 1_000_000, repeat.stderr
