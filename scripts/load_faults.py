"""Exactly once under load and faults: many session keys pay through a fault proxy, then every ledger is checked.

``--keys`` agents (one thread each, its own session key, one shared default-style outbox) each make ``--ops``
token transfers on each of ``--paths`` (``bundler``: through Alto; ``self_bundled``: ``handleOps`` sent by the
agent's own bundler EOA; ``direct``: a transaction from the session key). Every transfer goes to its own fresh
recipient, so a recipient's balance says how many times its intent landed. Between the agents and anvil / Alto
sit two :class:`tests.fault_proxy.FaultProxy` instances firing, at random (seeded), delayed answers, answers
dropped after the upstream acted, answers cut mid-way, HTTP 429 with ``Retry-After``, malformed JSON, a node
that goes down for 2 s or 12 s (a restart) and a bundler that accepts an operation, loses it and is down for 2 s.

An agent retries like a careful user of the SDK: after ``OutcomeUnknownError`` it calls ``agent.settle()`` and
reads what it says of its own hashes (landed: done; dropped or still pending: send the same call again, which the
outbox turns into a settle-or-refuse); after any other typed error it sends the same call again; a
``DuplicateIntentError`` saying the intent landed is a success. Unnamed intents only (the harder case: the
outbox identifies them by their calls).

Checked at the end, with the faults off and every agent's outbox settled: every recipient holds exactly its
amount (each intent landed once), every session's token ledger on chain equals the sum of its landed transfers,
every hash reported landed is on chain and no attempt reported failed landed, every exception was typed.
Prints the figures (also ``--json FILE``); exit status 1 if any check failed.

Usage (starts its own anvil and Alto; needs ``npm ci``)::

    PYTHONPATH=src python scripts/load_faults.py --keys 20 --ops 25
    PYTHONPATH=src python scripts/load_faults.py --keys 2 --ops 3 --paths bundler,direct --seed 7

The figures depend on the machine and its load (timeouts fire more on a busy machine): the invariants do not.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT / "src", ROOT / "tests"):  # the package (checkout) and tests/fault_proxy.py
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

PATHS = ("bundler", "self_bundled", "direct")
USDC = 10**6


@dataclass
class Figures:
    keys: int
    ops: int
    paths: tuple[str, ...]
    intents: int = 0
    landed_once: int = 0
    landed_twice_or_more: int = 0
    never_landed: int = 0
    double_spends: int = 0
    attempts: int = 0
    reported_failed: int = 0
    outcome_unknown: int = 0
    duplicates_refused: int = 0
    settled_by_settle: int = 0
    untyped: int = 0
    faults_fired: int = 0
    ledger_mismatches: int = 0
    reported_landed_not_on_chain: int = 0
    reported_failed_but_landed: int = 0
    outbox_bytes: int = 0
    outbox_compactions: int = 0
    seconds: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        return [
            f"keys x ops x paths      {self.keys} x {self.ops} x {len(self.paths)} ({', '.join(self.paths)})",
            f"intents                 {self.intents}",
            f"landed exactly once     {self.landed_once}",
            f"landed twice or more    {self.landed_twice_or_more}",
            f"never landed            {self.never_landed}",
            f"double-spends           {self.double_spends}",
            f"attempts                {self.attempts}",
            f"reported failed         {self.reported_failed}  (typed; then retried)",
            f"outcome unknown         {self.outcome_unknown}  (OutcomeUnknownError with the hash; then settled)",
            f"duplicates refused      {self.duplicates_refused}  (DuplicateIntentError: the retry was not sent)",
            f"settled by settle()     {self.settled_by_settle}",
            f"untyped exceptions      {self.untyped}",
            f"faults fired            {self.faults_fired}",
            f"ledger mismatches       {self.ledger_mismatches}",
            f"said done, not landed   {self.reported_landed_not_on_chain}",
            f"said failed, landed     {self.reported_failed_but_landed}",
            f"outbox                  {self.outbox_bytes} bytes after {self.outbox_compactions} compactions",
            f"wall time               {self.seconds:.0f} s",
            "errors (by type)        " + (", ".join(f"{k} {v}" for k, v in sorted(self.errors.items())) or "none"),
            "result                  " + ("OK" if self.ok else "FAILED: " + "; ".join(self.problems[:10])),
        ]


class _Restart:
    """A process restart that keeps its state: with probability ``p`` a request starts ``seconds`` of downtime
    (every connection closed, the request itself too), at most ``times`` times."""

    def __init__(self, down: Any, seconds: float, *, p: float, times: int, seed: int) -> None:
        from fault_proxy import _Fault

        self.down, self.seconds = down, seconds
        self.gate = _Fault(None, p=p, times=times, seed=seed)

    @property
    def fired(self) -> int:
        return self.gate.fired

    def __call__(self, request: dict[str, Any], ctx: Any) -> Any:
        from fault_proxy import DropConnection

        if self.gate.fires(request):
            self.down.start(self.seconds)
            raise DropConnection
        return None


def fault_modes(chain_id: int, seed: int, rate: float = 1.0) -> tuple[list[Any], list[Any]]:
    """The node's and the bundler's fault modes (``rate`` scales every probability)."""
    from fault_proxy import (
        CutAnswer,
        Delay,
        Down,
        Drop,
        Malformed,
        RateLimit,
        SwallowUserOps,
    )

    from smartkeys.deployments import ENTRY_POINT_V08
    from smartkeys.userop import PackedUserOperation, user_op_hash

    def hash_of(op_rpc: dict[str, Any]) -> str:
        return "0x" + user_op_hash(PackedUserOperation.from_rpc(op_rpc), ENTRY_POINT_V08, chain_id).hex()

    node_down, bundler_down = Down(), Down()
    node = [
        node_down,
        _Restart(node_down, 2.0, p=0.0015 * rate, times=10, seed=seed + 1),  # a quick restart: absorbed by retries
        _Restart(node_down, 12.0, p=0.0003 * rate, times=2, seed=seed + 14),  # longer than settling waits
        Delay(0.5, ("eth_call", "eth_getBlockByNumber"), p=0.02 * rate, seed=seed + 2),
        Drop(("eth_sendRawTransaction",), after_forward=True, p=0.12 * rate, seed=seed + 3),
        Drop(("eth_call", "eth_getBlockByNumber"), after_forward=False, p=0.01 * rate, seed=seed + 4),
        CutAnswer(("eth_getTransactionReceipt", "eth_getLogs"), p=0.04 * rate, seed=seed + 5),
        RateLimit(("eth_call", "eth_getBlockByNumber", "eth_getTransactionCount"), retry_after=0.2,
                  p=0.02 * rate, seed=seed + 6),
        Malformed(("eth_getTransactionCount", "eth_call"), p=0.01 * rate, seed=seed + 7),
    ]
    bundler = [
        bundler_down,
        SwallowUserOps(hash_of, bundler_down, down_seconds=2.0, p=0.03 * rate, times=10, seed=seed + 8),
        Delay(1.2, ("eth_sendUserOperation", "eth_getUserOperationReceipt"), p=0.04 * rate, seed=seed + 9),
        Drop(("eth_sendUserOperation",), after_forward=True, p=0.12 * rate, seed=seed + 10),
        CutAnswer(("eth_getUserOperationReceipt",), p=0.05 * rate, seed=seed + 11),
        RateLimit(("eth_estimateUserOperationGas",), retry_after=0.2, p=0.05 * rate, seed=seed + 12),
        Malformed(("eth_sendUserOperation",), p=0.03 * rate, seed=seed + 13),
    ]
    return node, bundler


@dataclass
class _Intent:
    key: int
    path: str
    index: int
    recipient: str
    amount: int
    hashes: list[str] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    failed_hashes: list[str] = field(default_factory=list)  # what an attempt reported as failed had sent


def _drive(agent: Any, it: _Intent, token: str, client: Any, bundler_eoa: Any, counts: Counter,
           lock: threading.Lock, max_attempts: int = 15) -> None:
    """One intent, retried until the SDK says it landed (or ``max_attempts`` is used up)."""
    from smartkeys.errors import (
        DuplicateIntentError,
        OutcomeUnknownError,
        SmartKeysError,
    )

    via = "direct" if it.path == "direct" else "user_op"
    kw = {} if it.path == "direct" else {"bundler": client if it.path == "bundler" else bundler_eoa}

    def note(outcome: str) -> None:
        it.outcomes.append(outcome)
        with lock:
            counts[outcome.split(":")[0]] += 1
            if ":" in outcome and not outcome.startswith("duplicate"):
                counts["error " + outcome.split(":", 1)[1]] += 1

    for _ in range(max_attempts):
        sent_before = len(it.hashes)
        try:
            agent.transfer(token, it.recipient, it.amount, via=via, **kw,
                           on_submit=lambda intent: it.hashes.append("0x" + intent.hash.hex()))
            note("ok")
            return
        except OutcomeUnknownError as exc:
            note(f"unknown:{type(exc).__name__}")
            if exc.hash not in it.hashes:
                note("untyped:unknown outcome without the hash sent")
                return
            if _settled_landed(agent, it, client, note):
                return
        except DuplicateIntentError as exc:
            note(f"duplicate:{exc.status}")
            if exc.status != "pending":
                return
            if _settled_landed(agent, it, client, note):
                return
        except SmartKeysError as exc:
            note(f"failed:{type(exc).__name__}")
            it.failed_hashes.extend(it.hashes[sent_before:])
        except Exception as exc:  # noqa: BLE001 - what this run hunts for
            note(f"untyped:{type(exc).__name__}: {str(exc)[:80]}")
            return
        time.sleep(0.2)
    note("gave-up")


def _settled_landed(agent: Any, it: _Intent, client: Any, note: Any) -> bool:
    """``agent.settle()``; True if it says one of this intent's hashes landed (its outcome is now reported)."""
    from smartkeys.errors import SmartKeysError

    try:
        settled = agent.settle(bundler=client, wait=5)
    except SmartKeysError as exc:
        note(f"failed:{type(exc).__name__}")
        return False
    except Exception as exc:  # noqa: BLE001
        note(f"untyped:{type(exc).__name__}: {str(exc)[:80]}")
        return True
    for s in settled:
        if "0x" + s.hash.hex() in it.hashes and s.status in ("landed", "reverted"):
            note("settled")
            return True
    return False


def run(chain: Any, alto_url: str, *, keys: int, ops: int, paths: tuple[str, ...] = PATHS, seed: int = 16,
        fault_rate: float = 1.0, workdir: Path, progress: bool = False) -> Figures:
    """Run the load against ``chain`` (an anvil :class:`~smartkeys.localchain.LocalChain` with the smartkeys
    deployments) and the Alto at ``alto_url`` serving it; returns the :class:`Figures` (``.ok``: all checks held)."""
    from eth_account import Account
    from eth_utils import keccak
    from fault_proxy import FaultProxy

    from smartkeys import artifacts
    from smartkeys.account import Owner, SessionAgent
    from smartkeys.bundler import BundlerClient
    from smartkeys.deployments import ENTRY_POINT_V08
    from smartkeys.errors import register_contract_errors
    from smartkeys.outbox import Outbox
    from smartkeys.policy_codec import Permission, SessionPolicy, TokenCap
    from smartkeys.rpc import connect

    rng = random.Random(seed)
    fig = Figures(keys=keys, ops=ops, paths=tuple(paths))
    w3 = chain.w3
    salt = rng.randrange(1, 2**32)
    token_address = chain.deploy_create2("test/MockERC20", salt, ["USD Coin", "USDC", 6])
    token = w3.eth.contract(address=token_address, abi=artifacts.load("test/MockERC20")["abi"])
    register_contract_errors(token.abi)
    eoa = Account.create()
    chain.send({"to": eoa.address, "value": 100 * 10**18}, chain.deployer)
    owner = Owner(w3, eoa)
    owner.delegate()
    chain.send({"to": token.address, "data": token.encode_abi("mint", [owner.address, 10**9 * USDC])}, chain.deployer)

    node_modes, bundler_modes = fault_modes(chain.chain_id, seed, fault_rate)
    node_proxy = FaultProxy(chain.url).start()
    bundler_proxy = FaultProxy(alto_url).start()
    outbox = Outbox(workdir / "outbox.jsonl", auto_compact_bytes=256 * 1024)  # compacts often under this load
    compactions = Counter()
    real_compact = outbox.compact

    def counted_compact(**kw: Any) -> Any:
        compactions["n"] += 1
        return real_compact(**kw)

    outbox.compact = counted_compact  # type: ignore[method-assign]
    try:
        faulty_w3 = connect(node_proxy.url, timeout=3, retries=4)
        agents, bundlers, policies = [], [], []
        for _ in range(keys):  # granted and funded through the clean node
            key = Account.create()
            policy = SessionPolicy(key=key.address, valid_after=0, valid_until=chain.time() + 86_400,
                                   gas_budget=10**18, permissions=(Permission(token.address, "transfer(address,uint256)"),),
                                   token_caps=(TokenCap(token.address, 10**9 * USDC),))
            owner.grant(policy)
            bundler_eoa = Account.create()
            for who in (key.address, bundler_eoa.address):
                chain.send({"to": who, "value": 10**18}, chain.deployer)
            agents.append(SessionAgent(faulty_w3, owner.address, key, policy, outbox=outbox))
            bundlers.append(bundler_eoa)
            policies.append(policy)
        client = BundlerClient(bundler_proxy.url, timeout=3.0, max_retries=3, poll_interval=0.1, backoff=0.1,
                               max_backoff=1.0)
        intents = [[_Intent(k, p, i, Account.create().address, (k + 1) * 1000 + i * 10 + PATHS.index(p))
                    for i in range(ops) for p in paths] for k in range(keys)]
        for per_key in intents:
            rng.shuffle(per_key)
        counts: Counter = Counter()
        lock = threading.Lock()
        start_block = w3.eth.block_number
        node_proxy.modes[:] = node_modes  # faults on
        bundler_proxy.modes[:] = bundler_modes
        started = time.monotonic()
        done = Counter()

        def work(k: int) -> None:
            for it in intents[k]:
                _drive(agents[k], it, token.address, client, bundlers[k], counts, lock)
                with lock:
                    done["n"] += 1

        threads = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(keys)]
        for t in threads:
            t.start()
        total = keys * ops * len(paths)
        while any(t.is_alive() for t in threads):
            time.sleep(10 if progress else 1)
            if progress:
                print(f"  {done['n']}/{total} intents, {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
        node_proxy.modes.clear()  # faults off
        bundler_proxy.modes.clear()
        fig.seconds = time.monotonic() - started
        clean = BundlerClient(alto_url, max_retries=0, poll_interval=0.05)
        for a in agents:  # a restarted agent, on a healthy connection, settles what is still open
            SessionAgent(w3, a.account, a._key, a.policy, outbox=outbox).settle(bundler=clean, wait=15)
        fig.faults_fired = sum(getattr(m, "fired", 0) + getattr(m, "refused", 0) for m in (*node_modes, *bundler_modes))
        _check(fig, w3, token, owner, agents, intents, counts, start_block, ENTRY_POINT_V08, keccak)
        fig.outbox_bytes = outbox.path.stat().st_size if outbox.path.exists() else 0
        fig.outbox_compactions = compactions["n"]
        return fig
    finally:
        node_proxy.close()
        bundler_proxy.close()


def _check(fig: Figures, w3: Any, token: Any, owner: Any, agents: list[Any], intents: list[list[_Intent]],
           counts: Counter, start_block: int, entry_point: str, keccak: Any) -> None:
    from web3.exceptions import TransactionNotFound

    from smartkeys.preflight import read_session_state

    event = "0x" + keccak(text="UserOperationEvent(bytes32,address,address,uint256,bool,uint256,uint256)").hex()
    logs = w3.eth.get_logs({"address": entry_point, "fromBlock": start_block, "toBlock": "latest",
                            "topics": [event, None, "0x" + bytes(12).hex() + owner.address[2:].lower()]})
    landed: Counter = Counter()
    for log in logs:
        if int.from_bytes(bytes(log["data"])[32:64], "big") == 1:
            landed["0x" + bytes(log["topics"][1]).hex()] += 1
    for per_key in intents:
        for it in per_key:
            if it.path != "direct":
                continue
            for h in set(it.hashes):
                try:
                    if w3.eth.get_transaction_receipt(h)["status"] == 1:
                        landed[h] += 1
                except TransactionNotFound:
                    pass
    fig.intents = sum(len(p) for p in intents)
    fig.attempts = sum(len([o for o in it.outcomes if o.split(":")[0] in ("ok", "unknown", "duplicate", "failed",
                                                                          "untyped")])
                       for p in intents for it in p)
    fig.reported_failed = counts["failed"]
    fig.outcome_unknown = counts["unknown"]
    fig.duplicates_refused = counts["duplicate"]
    fig.settled_by_settle = counts["settled"]
    fig.untyped = counts["untyped"]
    fig.errors = {k[len("error "):]: v for k, v in counts.items() if k.startswith("error ")}
    for k, (agent, per_key) in enumerate(zip(agents, intents, strict=True)):
        expected = 0
        for it in per_key:
            balance = token.functions.balanceOf(it.recipient).call()
            times, rest = divmod(balance, it.amount)
            on_chain = sum(landed[h] for h in set(it.hashes))
            if rest or times != on_chain:
                fig.problems.append(f"key {k} {it.path} #{it.index}: balance {balance} vs {on_chain} landed hashes")
            if times == 1:
                fig.landed_once += 1
            elif times == 0:
                fig.never_landed += 1
                fig.problems.append(f"key {k} {it.path} #{it.index} never landed: {it.outcomes}")
            else:
                fig.landed_twice_or_more += 1
                fig.double_spends += times - 1
                fig.problems.append(f"key {k} {it.path} #{it.index} landed {times} times: {it.outcomes}")
            expected += balance
            if "ok" in it.outcomes and not on_chain:
                fig.reported_landed_not_on_chain += 1
                fig.problems.append(f"key {k} {it.path} #{it.index} reported done, not on chain")
            lied = [h for h in it.failed_hashes if landed[h]]
            if lied:  # an attempt was reported failed, yet what it sent landed
                fig.reported_failed_but_landed += 1
                fig.problems.append(f"key {k} {it.path} #{it.index} reported failed but {lied[0]} landed")
        spent = read_session_state(w3, owner.address, agent.policy).tokens[token.address].total_spent
        if spent != expected:
            fig.ledger_mismatches += 1
            fig.problems.append(f"key {k}: session ledger says {spent} spent, recipients hold {expected}")
    if fig.untyped:
        fig.problems.append(f"{fig.untyped} untyped exceptions: "
                            + "; ".join(o for p in intents for it in p for o in it.outcomes if o.startswith("untyped"))[:300])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Starts anvil and Alto (node_modules from `npm ci`); prints the figures.")
    parser.add_argument("--keys", type=int, default=20, help="session keys, one agent thread each (default 20)")
    parser.add_argument("--ops", type=int, default=25, help="transfers per key and per path (default 25)")
    parser.add_argument("--paths", default=",".join(PATHS),
                        help=f"comma-separated paths among {', '.join(PATHS)} (default: all three)")
    parser.add_argument("--seed", type=int, default=16, help="seed of the fault and order generators (default 16)")
    parser.add_argument("--fault-rate", type=float, default=1.0, help="scale every fault probability (default 1.0)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    paths = tuple(p.strip() for p in args.paths.split(",") if p.strip())
    bad = [p for p in paths if p not in PATHS]
    if bad or not paths or args.keys < 1 or args.ops < 1:
        parser.error(f"--paths takes {', '.join(PATHS)}; --keys and --ops at least 1 (got {args.paths!r})")

    from smartkeys.localchain import start_local_chain
    from smartkeys.node import start_alto

    with tempfile.TemporaryDirectory(prefix="smartkeys-load-") as tmp:
        chain = start_local_chain("anvil")
        alto = None
        try:
            alto = start_alto(chain, log_path=Path(tmp) / "alto.log", timeout=120)
            fig = run(chain, alto.url, keys=args.keys, ops=args.ops, paths=paths, seed=args.seed,
                      fault_rate=args.fault_rate, workdir=Path(tmp), progress=not args.quiet)
        finally:
            if alto is not None:
                alto.stop()
            chain.close()
    print("\n".join(fig.lines()))
    if args.json:
        doc = {k: v for k, v in fig.__dict__.items()}
        doc["paths"] = list(fig.paths)
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
    return 0 if fig.ok else 1


if __name__ == "__main__":
    sys.exit(main())
