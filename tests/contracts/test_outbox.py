"""The outbox and the exactly-once rules of ``SessionAgent`` on the embedded chain (both paths, self-bundled).

Faults are injected at the web3 seam (the node answers, then the connection fails): what matters here is the
SDK's bookkeeping -- recorded before sending, typed unknown outcome with the hash, settled by lookup, a retry
refused while it may land or once it landed, named intents exactly once.
"""

from __future__ import annotations

import json
import time

import pytest
import requests
from eth_account import Account

from smartkeys.deployments import ENTRY_POINT_V08
from smartkeys.errors import DuplicateIntentError, InvalidInputError, OutcomeUnknownError, get_error_class
from smartkeys.outbox import DROPPED, LANDED, PENDING, Outbox
from smartkeys.policy_codec import Permission, SessionPolicy, TokenCap
from smartkeys.userop import PackedUserOperation, user_op_hash

TRANSFER = "transfer(address,uint256)"


@pytest.fixture
def agent(grant, token, session_key, tmp_path, fund):
    fund(session_key.address)  # for the direct path
    a = grant(session_key, permissions=(Permission(token.address, TRANSFER),), token_caps=(TokenCap(token.address, 10**9),))
    a.outbox = Outbox(tmp_path / "outbox.jsonl")
    return a


def balance(token, who):
    return token.functions.balanceOf(who).call()


@pytest.mark.parametrize("via", ["direct", "user_op"])
def test_the_intent_is_on_disk_with_its_hash_before_it_is_sent(agent, token, bundler, via):
    to = Account.create().address
    seen = []

    def on_submit(intent):
        on_disk = [json.loads(line) for line in agent.outbox.path.read_text().splitlines()]
        seen.append((intent, on_disk, balance(token, to)))

    kw = {"bundler": bundler} if via == "user_op" else {}
    receipt = agent.transfer(token.address, to, 5, via=via, on_submit=on_submit, **kw)
    (intent, on_disk, before), = seen
    assert before == 0 and on_disk[-1]["hash"] == "0x" + intent.hash.hex()
    if via == "user_op":
        assert receipt.user_op_hash == intent.hash
        op = PackedUserOperation.from_rpc(intent.payload["op"])
        assert user_op_hash(op, ENTRY_POINT_V08, agent.chain_id) == intent.hash
    else:
        assert receipt.transaction_hash == intent.hash
    (final,) = agent.outbox.read()
    assert final.status == LANDED and final.acknowledged and final.transaction_hash == receipt.transaction_hash


def _break_after_send(monkeypatch, w3, *, reads_fail=True):
    """The node takes the transaction, then the connection dies: the answer and every later read fail."""
    eth = type(w3.eth)
    real_send = eth.send_raw_transaction
    state = {"sent": 0}

    def send(self, raw):
        real_send(self, raw)
        state["sent"] += 1
        raise requests.ConnectionError("Connection aborted: RemoteDisconnected")

    def failing(real):
        def read(*a, **k):
            if state["sent"]:
                raise requests.ConnectionError("Connection refused")
            return real(*a, **k)

        return read

    monkeypatch.setattr(eth, "send_raw_transaction", send)
    if reads_fail:
        for name in ("get_transaction_receipt", "get_logs", "get_transaction_count"):
            monkeypatch.setattr(eth, name, failing(getattr(eth, name)))
    return state


@pytest.mark.parametrize("via", ["direct", "user_op"])
def test_unknown_outcome_is_typed_with_the_hash_and_a_retry_never_pays_twice(agent, token, bundler, via,
                                                                           monkeypatch):
    to = Account.create().address
    kw = {"bundler": bundler} if via == "user_op" else {}
    hashes = []
    with monkeypatch.context() as m:
        state = _break_after_send(m, agent.w3)
        with pytest.raises(OutcomeUnknownError) as err:
            agent.transfer(token.address, to, 7, via=via, on_submit=lambda i: hashes.append(i.hash), **kw)
    assert state["sent"] == 1 and balance(token, to) == 7  # it did land
    assert err.value.hash == "0x" + hashes[0].hex()
    assert err.value.kind == ("user_op" if via == "user_op" else "transaction")
    assert "do NOT send it again" in str(err.value)
    (pending,) = agent.pending()
    assert pending.status == PENDING

    with pytest.raises(DuplicateIntentError) as dup:  # the careless retry: settled first, then refused
        agent.transfer(token.address, to, 7, via=via, **kw)
    assert dup.value.status == LANDED and dup.value.hash == err.value.hash
    assert balance(token, to) == 7
    settled = agent.settle()
    assert [i.status for i in settled] == [LANDED] and agent.pending() == []
    # issue 16: "a retry of a settled intent is refused unless asked for by name" -- the same unnamed calls
    # after settle() found them landed are still refused (naming the landed hash and the fix) ...
    with pytest.raises(DuplicateIntentError) as again:
        agent.transfer(token.address, to, 7, via=via, **kw)
    assert again.value.settled and again.value.hash == err.value.hash
    assert "repeat=True" in str(again.value) and "intent=" in str(again.value)
    assert balance(token, to) == 7 and agent.pending() == []
    # ... and a deliberate second payment is asked for explicitly: repeat=True, or a name
    agent.transfer(token.address, to, 7, via=via, repeat=True, **kw)
    assert balance(token, to) == 14
    agent.transfer(token.address, to, 7, via=via, intent=f"second-{via}", **kw)
    assert balance(token, to) == 21


def test_a_recorded_intent_that_never_left_is_resent_unchanged_by_settle(agent, token, bundler, monkeypatch):
    to = Account.create().address
    eth = type(agent.w3.eth)

    def lost(self, raw):
        raise requests.ConnectionError("Connection refused")  # it never reached the node

    with monkeypatch.context() as m:
        m.setattr(eth, "send_raw_transaction", lost)
        m.setattr(eth, "get_transaction_receipt", lambda *a, **k: (_ for _ in ()).throw(requests.ConnectionError("down")))
        with pytest.raises(OutcomeUnknownError):
            agent.transfer(token.address, to, 3, via="direct")
    assert balance(token, to) == 0
    (intent,) = agent.settle()  # the same signed transaction, sent again: same hash
    assert intent.status == LANDED and intent.transaction_hash == intent.hash
    assert balance(token, to) == 3


def test_an_intent_whose_nonce_was_taken_is_dropped_and_may_be_retried(agent, token, monkeypatch):
    to = Account.create().address
    eth = type(agent.w3.eth)
    with monkeypatch.context() as m:
        m.setattr(eth, "send_raw_transaction", lambda self, raw: (_ for _ in ()).throw(requests.ConnectionError("x")))
        m.setattr(eth, "get_transaction_receipt", lambda *a, **k: (_ for _ in ()).throw(requests.ConnectionError("x")))
        with pytest.raises(OutcomeUnknownError):
            agent.transfer(token.address, to, 4, via="direct")
    agent.transfer(token.address, Account.create().address, 1, via="direct")  # another use takes that nonce
    (intent,) = [i for i in agent.outbox.read() if i.status != LANDED]
    from smartkeys.outbox import settle

    assert settle(agent.w3, agent.outbox, intent).status == DROPPED
    agent.transfer(token.address, to, 4, via="direct")  # not refused: it can never land
    assert balance(token, to) == 4


def test_a_named_intent_is_sent_once_for_good(agent, token, bundler):
    to = Account.create().address
    agent.transfer(token.address, to, 9, via="user_op", bundler=bundler, intent="invoice-42")
    with pytest.raises(DuplicateIntentError) as err:
        agent.transfer(token.address, to, 9, via="user_op", bundler=bundler, intent="invoice-42")
    assert err.value.named and "invoice-42" in str(err.value)
    agent.transfer(token.address, to, 9, via="user_op", bundler=bundler)  # unnamed repeat after a reported success
    assert balance(token, to) == 18
    with pytest.raises(InvalidInputError):
        agent.transfer(token.address, to, 9, via="direct", intent="auto:forged")


def test_a_crash_mid_write_leaves_a_readable_outbox(agent, token, bundler):
    agent.transfer(token.address, Account.create().address, 2, via="user_op", bundler=bundler)
    with open(agent.outbox.path, "ab") as fp:
        fp.write(b'{"v":1,"event":"intent","intent_id":"auto:ab')  # the process died here
    assert [i.status for i in agent.outbox.read()] == [LANDED]
    assert agent.outbox.path.stat().st_mode & 0o077 == 0


def test_an_owner_grant_with_an_unknown_outcome_is_not_sent_twice(owner, token, tmp_path, monkeypatch, chain):
    from smartkeys.policy_codec import SessionPolicy

    owner.outbox = Outbox(tmp_path / "owner-outbox.jsonl")
    policy = SessionPolicy(key=Account.create().address, valid_after=0, valid_until=chain.time() + 3600,
                           gas_budget=10**15, permissions=(Permission(token.address, TRANSFER),),
                           token_caps=(TokenCap(token.address, 10**6),))
    nonce_before = owner.w3.eth.get_transaction_count(owner.address)
    with monkeypatch.context() as m:
        _break_after_send(m, owner.w3)
        with pytest.raises(OutcomeUnknownError) as err:
            owner.grant(policy)
    assert owner.session_report(policy).live  # it landed
    # A grant is refused again before anything is signed: a session id is granted once (SessionAlreadyGranted),
    # which answers before the outbox's own duplicate check would.
    with pytest.raises(get_error_class("SessionAlreadyGranted")) as dup:
        owner.grant(policy)
    assert dup.value.sessionId == policy.session_id
    assert err.value.hash
    assert owner.w3.eth.get_transaction_count(owner.address) == nonce_before + 1  # one transaction, not two


def test_a_session_agent_keeps_an_outbox_by_default_in_smartkeys_home(chain, owner, token, bundler, session_key,
                                                                      fund, monkeypatch, tmp_path):
    from smartkeys.account import SessionAgent

    home = tmp_path / "home"
    monkeypatch.setenv("SMARTKEYS_HOME", str(home))
    policy = SessionPolicy(key=session_key.address, valid_after=0, valid_until=chain.time() + 3600, gas_budget=10**17,
                           permissions=(Permission(token.address, TRANSFER),), token_caps=(TokenCap(token.address, 10**6),))
    owner.grant(policy)
    agent = SessionAgent(chain.w3, owner.address, session_key, policy)  # no outbox argument
    assert agent.outbox is not None and agent.outbox.path == home / "outbox.jsonl"
    receipt = agent.transfer(token.address, Account.create().address, 3, via="user_op", bundler=bundler)
    (recorded,) = Outbox(home / "outbox.jsonl").read()
    assert recorded.hash == receipt.user_op_hash and recorded.status == LANDED and recorded.acknowledged
    assert (home / "outbox.jsonl").stat().st_mode & 0o077 == 0

    for off in (None, False):  # the documented, unsafe opt-out: nothing is recorded
        unsafe = SessionAgent(chain.w3, owner.address, session_key, policy, outbox=off)
        assert unsafe.outbox is None
        unsafe.transfer(token.address, Account.create().address, 1, via="user_op", bundler=bundler)
    assert len(Outbox(home / "outbox.jsonl").read()) == 1
    with pytest.raises(InvalidInputError) as bad:
        SessionAgent(chain.w3, owner.address, session_key, policy, outbox=str(tmp_path / "o.jsonl"))
    assert bad.value.field == "outbox"


def test_the_low_level_sends_go_through_the_outbox(agent, token, bundler):
    """send_direct and send_user_op (no preflight) record the signed intent first and refuse a named repeat."""
    data = token.encode_abi("transfer", [Account.create().address, 6])
    receipt = agent.send_direct([(token.address, 0, data)], intent="low-level-1")
    result = agent.send_user_op([(token.address, 0, data)], bundler=bundler, intent="low-level-2")
    entries = {i.intent_id: i for i in agent.outbox.read()}
    assert entries["low-level-1"].hash == bytes(receipt["transactionHash"]) and entries["low-level-1"].via == "direct"
    assert entries["low-level-2"].hash == result.user_op_hash and entries["low-level-2"].via == "self_bundled"
    assert all(i.status == LANDED and i.acknowledged for i in entries.values())
    nonce = agent.w3.eth.get_transaction_count(agent.key_address)
    with pytest.raises(DuplicateIntentError):
        agent.send_direct([(token.address, 0, data)], intent="low-level-1")
    with pytest.raises(DuplicateIntentError):
        agent.send_user_op([(token.address, 0, data)], bundler=bundler, intent="low-level-2")
    assert agent.w3.eth.get_transaction_count(agent.key_address) == nonce


@pytest.mark.parametrize("low_level", ["send_direct", "send_user_op"])
def test_a_low_level_send_with_an_unknown_outcome_is_typed_and_never_paid_twice(agent, token, bundler, low_level,
                                                                                monkeypatch):
    to = Account.create().address
    data = token.encode_abi("transfer", [to, 8])
    kw = {"bundler": bundler} if low_level == "send_user_op" else {}
    send = getattr(agent, low_level)
    with monkeypatch.context() as m:
        state = _break_after_send(m, agent.w3)
        with pytest.raises(OutcomeUnknownError) as err:  # not a raw requests.ConnectionError
            send([(token.address, 0, data)], **kw)
    deadline = time.monotonic() + 10  # anvil may mine it just after the (lost) answer
    while balance(token, to) != 8 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state["sent"] == 1 and balance(token, to) == 8
    (pending,) = agent.pending()
    assert err.value.hash == "0x" + pending.hash.hex()
    with pytest.raises(DuplicateIntentError) as dup:  # the same low-level call again: settled, then refused
        send([(token.address, 0, data)], **kw)
    assert dup.value.status == LANDED and balance(token, to) == 8


def test_a_settled_named_intent_is_still_refused_after_compaction(agent, token, bundler):
    to = Account.create().address
    agent.transfer(token.address, to, 9, via="user_op", bundler=bundler, intent="invoice-7")
    for _ in range(3):
        agent.transfer(token.address, to, 1, via="direct")
    report = agent.outbox.compact()
    assert report.kept == 1 and report.dropped == 3
    with pytest.raises(DuplicateIntentError) as dup:
        agent.transfer(token.address, to, 9, via="direct", intent="invoice-7")
    assert dup.value.named and dup.value.status == LANDED and balance(token, to) == 12


def _rpc_error(code, message):
    from web3.exceptions import Web3RPCError

    error = {"code": code, "message": message}
    return Web3RPCError(str(error), rpc_response={"jsonrpc": "2.0", "id": 1, "error": error})


@pytest.mark.parametrize("via", ["direct", "user_op"])
def test_a_gateway_error_after_the_node_took_it_is_settled_not_refused(agent, token, bundler, via, monkeypatch):
    """Issue 16: an error object that does not certainly mean "refused" (here a gateway's -32603 after the
    node took the transaction) is an unknown outcome: settled by hash -> the receipt, paid once, typed."""
    to = Account.create().address
    kw = {"bundler": bundler} if via == "user_op" else {}
    eth = type(agent.w3.eth)
    real_send = eth.send_raw_transaction

    def send_then_gateway_error(self, raw):
        real_send(self, raw)
        raise _rpc_error(-32603, "upstream request timeout")

    with monkeypatch.context() as m:
        m.setattr(eth, "send_raw_transaction", send_then_gateway_error)
        receipt = agent.transfer(token.address, to, 9, via=via, **kw)
    assert receipt.success and balance(token, to) == 9
    (final,) = agent.outbox.read()
    assert final.status == LANDED and final.acknowledged and final.transaction_hash == receipt.transaction_hash


@pytest.mark.parametrize("via", ["direct", "user_op"])
def test_a_certain_refusal_is_typed_recorded_dropped_and_may_be_retried(agent, token, bundler, via, monkeypatch):
    """A node's "insufficient funds" means refused and in no pool: TransactionRefusedError (not web3's
    untyped Web3RPCError) with the hash and the fix; nothing moved; the entry is dropped, so a retry goes."""
    from smartkeys.errors import TransactionRefusedError

    to = Account.create().address
    kw = {"bundler": bundler} if via == "user_op" else {}
    eth = type(agent.w3.eth)
    ledger_before = agent.session_state()
    with monkeypatch.context() as m:
        m.setattr(eth, "send_raw_transaction", lambda self, raw: (_ for _ in ()).throw(
            _rpc_error(-32000, "insufficient funds for gas * price + value: have 0 want 10")))
        with pytest.raises(TransactionRefusedError) as err:
            agent.transfer(token.address, to, 11, via=via, **kw)
    assert "insufficient funds" in err.value.reason and "fund the sending address" in str(err.value)
    (entry,) = agent.outbox.read()
    expected = entry.hash if via == "direct" else bytes.fromhex(entry.payload["tx_hash"][2:])
    assert err.value.tx_hash == "0x" + expected.hex()
    assert entry.status == DROPPED and entry.acknowledged
    assert balance(token, to) == 0 and agent.session_state() == ledger_before
    agent.transfer(token.address, to, 11, via=via, **kw)  # it never spread: the retry is the only payment
    assert balance(token, to) == 11


@pytest.mark.parametrize("via", ["direct", "user_op"])
def test_the_intent_lock_of_a_key_excludes_another_process(agent, token, bundler, via, monkeypatch, tmp_path):
    """Issue 16, finding 1 across processes: while another process holds this key's intent lock (it is
    between its duplicate check and its record), a send of the same key on either path waits -- here past
    its deadline: DeadlineExceededError, nothing signed, nothing paid -- and goes once the lock is free."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from smartkeys import locks
    from smartkeys.errors import DeadlineExceededError
    from smartkeys.rpc import deadline

    monkeypatch.setenv("SMARTKEYS_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.setattr(locks, "shared_chain", lambda w3: True)  # as on a node that other processes reach
    src = str(Path(__file__).resolve().parents[2] / "src")
    code = ("import sys, time\nfrom smartkeys.locks import lane_lock\n"
            f"with lane_lock({agent.chain_id}, {agent.account!r}, {int(agent.key_address, 16)}, kind='intent'):\n"
            "    print('held', flush=True)\n    sys.stdin.readline()\n")
    child = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": src},
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    to = Account.create().address
    kw = {"bundler": bundler} if via == "user_op" else {}
    try:
        assert child.stdout.readline().strip() == "held"
        with deadline(1.0), pytest.raises(DeadlineExceededError):
            agent.transfer(token.address, to, 2, via=via, intent="invoice-lock", **kw)
        assert balance(token, to) == 0 and agent.outbox.read() == []
    finally:
        child.communicate("\n", timeout=20)
    agent.transfer(token.address, to, 2, via=via, intent="invoice-lock", **kw)
    assert balance(token, to) == 2


def test_an_owner_keeps_an_outbox_by_default_and_repeats_a_settled_payment_only_when_asked(chain, owner, token,
                                                                                           monkeypatch, smartkeys_home):
    """Owner, as SessionAgent: the default outbox ($SMARTKEYS_HOME/outbox.jsonl, a temporary home per test)
    remembers an unknown outcome; once settled as landed, the same execute is refused until repeat=True."""
    from smartkeys.account import Owner
    from smartkeys.outbox import settle

    fresh = Owner(chain.w3, owner._account)
    assert fresh.outbox is not None and fresh.outbox.path == smartkeys_home / "outbox.jsonl"
    assert Owner(chain.w3, owner._account, outbox=None).outbox is None  # the documented opt-out
    to = Account.create().address
    data = token.encode_abi("transfer", [to, 3_000])
    with monkeypatch.context() as m:
        _break_after_send(m, chain.w3)
        with pytest.raises(OutcomeUnknownError) as err:
            fresh.execute(token.address, 0, data)
    (entry,) = fresh.outbox.unsettled()
    settled = settle(chain.w3, fresh.outbox, entry, acknowledge=True)  # what `smartkeys pending --settle` does
    assert settled.status == LANDED and settled.hold_until is not None
    with pytest.raises(DuplicateIntentError) as dup:
        fresh.execute(token.address, 0, data)
    assert dup.value.settled and dup.value.hash == err.value.hash
    assert balance(token, to) == 3_000
    fresh.execute(token.address, 0, data, repeat=True)
    assert balance(token, to) == 6_000
