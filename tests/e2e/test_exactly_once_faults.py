"""Exactly once under network faults: agents send through a fault proxy in front of anvil and Alto.

Each scenario runs 2 agents (one thread each, own session key) x 5 token transfers; each transfer goes to
its own fresh recipient, so a recipient's balance says how many times its intent landed. An agent retries
the way a careless agent would (the same call again after any error), with no name for its intents: the
SDK's outbox must turn that into "exactly once". Checked per scenario:

- every exception is typed (a SmartKeysError): no JSONDecodeError, ConnectionError, BadFunctionCallOutput;
- never both outcomes: an attempt reported as failed (a NetworkError, a NonceConflictError, a refusal) never
  landed; an attempt reported as done landed; an unknown outcome carried the hash of what it sent;
- after settling, every intent is on chain exactly once (its recipient holds exactly its amount, and exactly
  one UserOperationEvent per intent).

The figures of each scenario (sent, landed, reported failed / unknown, double spends) are printed (-s).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import pytest
from eth_account import Account
from eth_utils import keccak
from fault_proxy import CutAnswer, Delay, Down, Drop, FaultProxy, Malformed, RateLimit, SwallowUserOps

from smartkeys.account import Owner, SessionAgent
from smartkeys.bundler import BundlerClient
from smartkeys.deployments import ENTRY_POINT_V08
from smartkeys.errors import (
    DuplicateIntentError,
    OutcomeUnknownError,
    SmartKeysError,
    register_contract_errors,
)
from smartkeys.outbox import Outbox
from smartkeys.policy_codec import Permission, SessionPolicy, TokenCap
from smartkeys.rpc import connect

AGENTS = 2
OPS = 5
USDC = 10**6
_USER_OP_EVENT = "0x" + keccak(text="UserOperationEvent(bytes32,address,address,uint256,bool,uint256,uint256)").hex()


@pytest.fixture(scope="module")
def token(alto_chain):
    from smartkeys import artifacts

    address = alto_chain.deploy_create2("test/MockERC20", 1616, ["USD Coin", "USDC", 6])
    contract = alto_chain.w3.eth.contract(address=address, abi=artifacts.load("test/MockERC20")["abi"])
    register_contract_errors(contract.abi)
    return contract


@pytest.fixture
def owner(alto_chain, token):
    eoa = Account.create()
    alto_chain.send({"to": eoa.address, "value": 10 * 10**18}, alto_chain.deployer)
    owner = Owner(alto_chain.w3, eoa)
    owner.delegate()
    alto_chain.send({"to": token.address, "data": token.encode_abi("mint", [owner.address, 10**6 * USDC])},
                    alto_chain.deployer)
    return owner


@dataclass
class Attempt:
    intent: int
    outcome: str  # ok | unknown | duplicate-landed | duplicate-pending | failed:<Type>
    hashes: list[str] = field(default_factory=list)
    error: BaseException | None = None


@dataclass
class Run:
    attempts: list[Attempt] = field(default_factory=list)
    untyped: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _agents(alto_chain, owner, token, w3, outbox, n=AGENTS):
    """Grant ``n`` session keys (through the clean node) and make their agents on ``w3`` (through the proxy)."""
    agents = []
    for _ in range(n):
        key = Account.create()
        policy = SessionPolicy(key=key.address, valid_after=0, valid_until=alto_chain.time() + 86_400,
                               gas_budget=10**17, permissions=(Permission(token.address, "transfer(address,uint256)"),),
                               token_caps=(TokenCap(token.address, 10**6 * USDC),))
        owner.grant(policy)
        agents.append(SessionAgent(w3, owner.address, key, policy, outbox=outbox))
    return agents


def _drive(agent, token, recipient, amount, index, client, run: Run, max_attempts=12, via="user_op") -> None:
    """A careless agent: the same call again after any error, until it is told the transfer happened."""
    kw = {"bundler": client} if via == "user_op" else {}
    for _ in range(max_attempts):
        attempt = Attempt(index, "?")
        try:
            agent.transfer(token.address, recipient, amount, via=via, **kw,
                           on_submit=lambda i, a=attempt: a.hashes.append("0x" + i.hash.hex()))
            attempt.outcome = "ok"
        except OutcomeUnknownError as exc:
            attempt.outcome, attempt.error = "unknown", exc
            assert exc.hash in attempt.hashes, "the unknown outcome must carry the hash of what was sent"
        except DuplicateIntentError as exc:
            attempt.outcome, attempt.error = f"duplicate-{'pending' if exc.status == 'pending' else 'landed'}", exc
        except SmartKeysError as exc:
            attempt.outcome, attempt.error = f"failed:{type(exc).__name__}", exc
        except Exception as exc:  # noqa: BLE001 - what the test hunts for
            with run.lock:
                run.untyped.append(exc)
            attempt.outcome, attempt.error = f"UNTYPED:{type(exc).__name__}", exc
        with run.lock:
            run.attempts.append(attempt)
        if attempt.outcome in ("ok", "duplicate-landed") or attempt.outcome.startswith("UNTYPED"):
            return
        time.sleep(0.3)


def _scenario(alto_chain, alto, owner, token, tmp_path, *, node_modes=(), bundler_modes=(), setup=None,
              client_timeout=3.0, name="", via="user_op"):
    node_proxy = FaultProxy(alto_chain.url, *node_modes).start()
    bundler_proxy = FaultProxy(alto.url, *bundler_modes).start()
    try:
        outbox = Outbox(tmp_path / "outbox.jsonl")
        w3 = connect(node_proxy.url, timeout=3, retries=4)
        agents = _agents(alto_chain, owner, token, w3, outbox)
        if via == "direct":  # the session keys pay their own gas
            for a in agents:
                alto_chain.send({"to": a.key_address, "value": 10**18}, alto_chain.deployer)
        client = BundlerClient(bundler_proxy.url, timeout=client_timeout, max_retries=3, poll_interval=0.05,
                               backoff=0.1, max_backoff=1.0)
        if setup is not None:
            setup(client)
        start_block = alto_chain.w3.eth.block_number
        recipients = [[Account.create().address for _ in range(OPS)] for _ in agents]
        amount = lambda ai, i: (ai + 1) * 1000 + i  # noqa: E731
        run = Run()

        def work(ai):
            for i in range(OPS):
                _drive(agents[ai], token, recipients[ai][i], amount(ai, i), ai * OPS + i, client, run, via=via)

        threads = [threading.Thread(target=work, args=(ai,)) for ai in range(len(agents))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=240)
        assert not any(t.is_alive() for t in threads), "an agent hung: a command without a deadline"
        # faults off: settle whatever is still unknown, then count
        node_proxy.modes.clear()
        bundler_proxy.modes.clear()
        clean = BundlerClient(alto.url, max_retries=0, poll_interval=0.05)
        for a in agents:  # a restarted agent: same key, policy and outbox, on a healthy connection
            SessionAgent(alto_chain.w3, a.account, a._key, a.policy, outbox=outbox).settle(bundler=clean, wait=15)
        figures = _check(alto_chain, owner, token, agents, recipients, amount, run, start_block, name)
        figures["faults_fired"] = sum(getattr(m, "fired", 0) + getattr(m, "refused", 0)
                                      for m in (*node_modes, *bundler_modes))
        print(f"faults fired: {figures['faults_fired']}")
        return figures
    finally:
        node_proxy.close()
        bundler_proxy.close()


def _check(alto_chain, owner, token, agents, recipients, amount, run, start_block, name):
    w3 = alto_chain.w3
    assert run.untyped == [], f"untyped exceptions: {[(type(e).__name__, str(e)[:100]) for e in run.untyped]}"
    logs = w3.eth.get_logs({"address": ENTRY_POINT_V08, "fromBlock": start_block, "toBlock": "latest",
                            "topics": [_USER_OP_EVENT, None, "0x" + bytes(12).hex() + owner.address[2:].lower()]})
    landed = {"0x" + bytes(log["topics"][1]).hex() for log in logs}
    from web3.exceptions import TransactionNotFound

    for h in {h for a in run.attempts for h in a.hashes}:  # direct transactions: their own receipts
        try:
            if w3.eth.get_transaction_receipt(h)["status"] == 1:
                landed.add(h)
        except TransactionNotFound:
            pass
    by_intent: dict[int, list[Attempt]] = defaultdict(list)
    for a in run.attempts:
        by_intent[a.intent].append(a)
    double = 0
    for ai in range(len(agents)):
        for i in range(OPS):
            index = ai * OPS + i
            balance = token.functions.balanceOf(recipients[ai][i]).call()
            times = balance // amount(ai, i)
            assert balance % amount(ai, i) == 0
            double += max(0, times - 1)
            assert times == 1, f"{name}: intent {index} landed {times} times: {by_intent[index]}"
            hashes = [h for a in by_intent[index] for h in a.hashes]
            assert len([h for h in hashes if h in landed]) == 1, f"{name}: intent {index}: {hashes} vs chain"
    for a in run.attempts:
        if a.outcome == "ok":
            assert any(h in landed for h in a.hashes), f"{name}: reported done but not on chain: {a}"
        if a.outcome.startswith("failed:"):
            assert not any(h in landed for h in a.hashes), f"{name}: reported failed but landed: {a}"
    sent = len({h for a in run.attempts for h in a.hashes})
    figures = {
        "scenario": name, "intents": len(agents) * OPS, "signed_sent": sent, "landed": len(landed),
        "reported_failed": sum(a.outcome.startswith("failed:") for a in run.attempts),
        "reported_unknown": sum(a.outcome == "unknown" for a in run.attempts),
        "refused_as_duplicate": sum(a.outcome.startswith("duplicate") for a in run.attempts),
        "double_spends": double,
        "errors": sorted({a.outcome for a in run.attempts if a.outcome != "ok"}),
    }
    print(f"\n{figures}")
    assert len(landed) == len(agents) * OPS and double == 0
    return figures


# --------------------------------------------------------------------------- one test per fault mode


def test_delayed_answers(alto_chain, alto, owner, token, tmp_path):
    f = _scenario(alto_chain, alto, owner, token, tmp_path, name="delay", client_timeout=1.0,
                  bundler_modes=[Delay(1.6, ("eth_sendUserOperation", "eth_getUserOperationReceipt"), p=0.3)],
                  node_modes=[Delay(0.5, ("eth_call",), p=0.1)])
    assert f["faults_fired"] > 0, "the fault never fired"


def test_dropped_answers_after_the_upstream_acted(alto_chain, alto, owner, token, tmp_path):
    f = _scenario(alto_chain, alto, owner, token, tmp_path, name="drop",
                  bundler_modes=[Drop(("eth_sendUserOperation",), after_forward=True, p=0.5)],
                  node_modes=[Drop(("eth_call", "eth_getBlockByNumber"), after_forward=False, p=0.15)])
    assert f["landed"] == AGENTS * OPS


def test_answers_cut_mid_way(alto_chain, alto, owner, token, tmp_path):
    _scenario(alto_chain, alto, owner, token, tmp_path, name="cut",
              bundler_modes=[CutAnswer(("eth_sendUserOperation", "eth_getUserOperationReceipt"), p=0.4)],
              node_modes=[CutAnswer(("eth_call", "eth_getLogs"), p=0.15)])


def test_rate_limited_with_retry_after(alto_chain, alto, owner, token, tmp_path):
    node_429 = RateLimit(("eth_call", "eth_getBlockByNumber"), retry_after=0.3, p=0.3)
    bundler_429 = RateLimit(("eth_estimateUserOperationGas",), retry_after=0.3, p=0.4)
    _scenario(alto_chain, alto, owner, token, tmp_path, name="429", node_modes=[node_429], bundler_modes=[bundler_429])
    assert node_429.fired and bundler_429.fired


def test_malformed_json(alto_chain, alto, owner, token, tmp_path):
    _scenario(alto_chain, alto, owner, token, tmp_path, name="malformed",
              bundler_modes=[Malformed(("eth_sendUserOperation",), p=0.5)],
              node_modes=[Malformed(("eth_call",), p=0.1)])


def test_bundler_killed_after_accepting_then_down(alto_chain, alto, owner, token, tmp_path):
    """The bundler accepts an operation, dies before bundling it (its mempool is lost) and is down for 2-3 s."""
    from smartkeys.userop import PackedUserOperation, user_op_hash

    down = Down()

    def hash_of(op_rpc):
        op = PackedUserOperation.from_rpc(op_rpc)
        return "0x" + user_op_hash(op, ENTRY_POINT_V08, alto_chain.chain_id).hex()

    swallow = SwallowUserOps(hash_of, down, down_seconds=2.5, p=0.35)
    _scenario(alto_chain, alto, owner, token, tmp_path, name="bundler-restart", bundler_modes=[down, swallow])
    assert swallow.fired and down.refused


def test_node_restarted_with_its_state_lost(alto_chain, alto, owner, token, tmp_path):
    """Mid-run the node the agents use is replaced by a fresh one without any contract: typed errors only,
    then the real node comes back and every intent lands once."""
    from smartkeys.localchain import start_local_chain

    fresh = start_local_chain("anvil", deploy_smartkeys=False, num_accounts=1)
    holder = {}

    class Restart:
        def __init__(self):
            self.calls = 0

        def __call__(self, request, ctx):
            self.calls += 1
            if self.calls == 40:
                ctx.proxy.switch_upstream(fresh.url)
                holder["t"] = time.monotonic()
            if self.calls == 90:
                ctx.proxy.switch_upstream(alto_chain.url)
            return None

    try:
        f = _scenario(alto_chain, alto, owner, token, tmp_path, name="node-restart", node_modes=[Restart()])
    finally:
        fresh.close()
    assert "t" in holder
    assert any(e.startswith("failed:") for e in f["errors"]), f


def test_direct_transactions_through_a_faulty_node(alto_chain, alto, owner, token, tmp_path):
    """The session key sends its own transactions: the node takes a transaction and the answer is lost, receipts
    are cut, nonce reads are garbled."""
    f = _scenario(alto_chain, alto, owner, token, tmp_path, name="direct-node-faults", via="direct",
                  node_modes=[Drop(("eth_sendRawTransaction",), after_forward=True, p=0.5),
                              CutAnswer(("eth_getTransactionReceipt",), p=0.3),
                              Malformed(("eth_getTransactionCount",), p=0.2)])
    assert f["faults_fired"] > 0


def test_node_down_right_after_taking_a_transaction(alto_chain, alto, owner, token, tmp_path):
    """The node takes the session key's transaction, then goes away for 12 s (longer than the retries and the
    settling wait): the agent cannot know the outcome and says so with the hash; its retries are refused or
    typed until the node is back, then settled instead of paying twice. (Outages of ~3 s are absorbed by the
    retries: the receipt arrives.)"""
    down = Down()

    class TakeThenDie(Drop):
        def __call__(self, request, ctx):
            if self.fires(request):
                ctx.forward(request)
                down.start(12.0)
                raise DropConnection_
            return None

    from fault_proxy import DropConnection as DropConnection_

    take = TakeThenDie(("eth_sendRawTransaction",), p=0.5, times=1)
    f = _scenario(alto_chain, alto, owner, token, tmp_path, name="node-down-after-send", via="direct",
                  node_modes=[down, take])
    assert take.fired == 1 and f["reported_unknown"] >= 1, f


def test_a_landed_operation_answered_with_aa25_is_reported_landed(alto_chain, alto, owner, token, tmp_path):
    """What a retried send meets when the first attempt landed: the bundler takes the operation, it is mined,
    and the answer the agent gets is "AA25 invalid account nonce". It landed: it must not be reported refused."""
    from fault_proxy import rpc_error

    class LandThenAA25(Drop):
        def __call__(self, request, ctx):
            if self.fires(request):
                answer = ctx.forward(request)
                for _ in range(100):  # until Alto has bundled it
                    receipt = ctx.forward({"jsonrpc": "2.0", "id": 1, "method": "eth_getUserOperationReceipt",
                                           "params": [answer.get("result")]})
                    if receipt.get("result"):
                        break
                    time.sleep(0.05)
                return rpc_error(request, -32521, "UserOperation reverted during simulation with reason: "
                                                  "AA25 invalid account nonce")
            return None

    mode = LandThenAA25(("eth_sendUserOperation",), p=0.5)
    f = _scenario(alto_chain, alto, owner, token, tmp_path, name="landed-then-AA25", bundler_modes=[mode])
    assert mode.fired and f["reported_failed"] == 0 and f["reported_unknown"] == 0, f
