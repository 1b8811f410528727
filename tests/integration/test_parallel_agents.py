"""Several agents acting in parallel on one account, self-bundled through ONE shared bundler EOA.

Five session keys: four used by one thread each, and one shared by two threads (six threads in all). Every
thread sends ``OPS_PER_THREAD`` token transfers as user operations with ``SessionAgent.transfer``; the SDK
serializes the shared bundler's transactions (one in-process lock per sending EOA) and the uses of one nonce
lane (one lock per account and key), while each key's ops take their nonces from its own EntryPoint lane.

Checked afterwards, from the EntryPoint's ``UserOperationEvent`` logs and the account's ledger:
none lost, none duplicated, every lane's sequence is exactly 0..n-1, every key's token ledger equals the sum
of its transfers, and the account's token balance dropped by the total.

The embedded eth-tester chain is not thread-safe, so on that backend every RPC request is serialized with a
lock (the threads still interleave between requests); anvil is used as is.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict

from eth_account import Account

from smartkeys.encoding import nonce_key_for, unpack_nonce
from smartkeys.policy_codec import Permission, TokenCap
from smartkeys.preflight import read_session_state

KEYS = 5
OPS_PER_THREAD = 8
SHARED_KEY = 4  # the key used by two threads
THREADS = [0, 1, 2, 3, SHARED_KEY, SHARED_KEY]  # key index of each thread


def test_parallel_agents_on_one_account_lose_and_duplicate_no_operation(
    chain, owner, token, grant, bundler, serialized_rpc
):
    w3 = chain.w3
    keys = [Account.create() for _ in range(KEYS)]
    agents = [
        grant(k, permissions=(Permission(token.address, "transfer(address,uint256)"),),
              token_caps=(TokenCap(token.address, 10**12),))
        for k in keys
    ]
    recipients = [Account.create().address for _ in THREADS]
    start_block = w3.eth.block_number + 1
    balance_before = token.functions.balanceOf(owner.address).call()

    sent: dict[int, list[int]] = defaultdict(list)  # key index -> amounts transferred successfully
    sent_lock = threading.Lock()
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(THREADS))

    def work(thread_index: int, key_index: int) -> None:
        agent = agents[key_index]
        try:
            barrier.wait()
            for i in range(OPS_PER_THREAD):
                amount = 1_000 * (thread_index + 1) + i
                receipt = agent.transfer(token.address, recipients[thread_index], amount, via="user_op",
                                         bundler=bundler)
                assert receipt.success and receipt.charges.tokens[token.address] == amount
                with sent_lock:
                    sent[key_index].append(amount)
        except BaseException as exc:  # noqa: BLE001 -- reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t, k), daemon=True) for t, k in enumerate(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker thread hung"
    assert errors == []

    # every operation landed exactly once, on its key's own lane, in sequence
    events = agents[0].entry_point.contract.events.UserOperationEvent().get_logs(
        from_block=start_block, to_block="latest", argument_filters={"sender": owner.address}
    )
    assert all(e["args"]["success"] for e in events)
    lanes: dict[int, list[int]] = defaultdict(list)
    for e in events:
        key, seq = unpack_nonce(e["args"]["nonce"])
        lanes[key].append(seq)
    per_key_ops = Counter(THREADS)
    assert len(events) == len(THREADS) * OPS_PER_THREAD
    assert len({e["args"]["userOpHash"] for e in events}) == len(events)
    for k, key in enumerate(keys):
        lane = nonce_key_for(key.address)
        assert sorted(lanes[lane]) == list(range(per_key_ops[k] * OPS_PER_THREAD)), f"lane of key {k}"
    assert set(lanes) == {nonce_key_for(k.address) for k in keys}

    # every key's ledger is exactly the sum of its transfers; the account paid the total
    total = 0
    for k, agent in enumerate(agents):
        assert len(sent[k]) == per_key_ops[k] * OPS_PER_THREAD
        state = read_session_state(w3, owner.address, agent.policy)
        assert state.tokens[token.address].total_spent == sum(sent[k])
        assert state.uses == 0  # no max_uses: the contract does not count uses
        total += sum(sent[k])
    for t, recipient in enumerate(recipients):
        expected = sum(1_000 * (t + 1) + i for i in range(OPS_PER_THREAD))
        assert token.functions.balanceOf(recipient).call() == expected
    assert balance_before - token.functions.balanceOf(owner.address).call() == total
