"""Every log query survives a provider that refuses ``eth_getLogs`` over 500 blocks, on a long chain.

A loopback proxy (tests/fault_proxy.py) enforces the limit, in the words of a public provider, in front of an
anvil with 100,000+ blocks. Before, ``Owner.delegate()`` failed even for a fresh EOA (it asked for the
account's logs from genesis in one request), and so did ``policy_from_chain``, ``granted_policies``, the audit
and ``smartkeys status``. Now one chunked reader adapts to the limit, and scans start at the account's first
transaction, never at genesis.
"""

from __future__ import annotations

import io
import json

import pytest
from eth_account import Account
from fault_proxy import LogRangeLimit, MethodRecorder
from web3 import Web3

from smartkeys.account import Owner
from smartkeys.audit import build_audit
from smartkeys.deployments import account_address
from smartkeys.logs import account_start_block
from smartkeys.policy import granted_policies, policy_from_chain
from smartkeys.policy_codec import Permission, PermissionMode, SessionPolicy

BEEF = "0x000000000000000000000000000000000000bEEF"


def _policy(w3, key, n=0):
    now = int(w3.eth.get_block("latest")["timestamp"])
    return SessionPolicy(key=key.address, valid_after=0, valid_until=now + 86_400 + n, max_uses=3,
                         permissions=(Permission(BEEF, mode=PermissionMode.EMPTY_CALLDATA),),
                         native_per_call=10**15, native_total=10**16, gas_budget=10**17)


@pytest.fixture
def hostile(long_chain, fault_proxy):
    """(w3 through a proxy refusing eth_getLogs over 500 blocks, the limit mode, the method recorder)."""
    limit, recorder = LogRangeLimit(500, style="alchemy"), MethodRecorder()
    proxy = fault_proxy(long_chain.url, recorder, limit)
    return Web3(Web3.HTTPProvider(proxy.url)), limit, recorder


def _fresh(long_chain):
    eoa = Account.create()
    long_chain.send({"to": eoa.address, "value": 10**18}, long_chain.accounts[7])
    return eoa


def test_delegate_of_a_fresh_eoa_reads_no_logs(long_chain, hostile):
    w3, limit, recorder = hostile
    assert w3.eth.block_number >= 100_000
    owner = Owner(w3, _fresh(long_chain))
    owner.delegate()
    assert owner.delegation() == account_address()
    assert limit.refused == 0


@pytest.mark.parametrize("style", ["alchemy", "quicknode", "geth-style", "generic"])
def test_grants_in_different_windows_are_all_found_behind_a_tight_limit(long_chain, fault_proxy, style):
    """A 20-block limit (mining 500-block gaps is too slow on anvil here): the reader must chunk and adapt."""
    limit, recorder = LogRangeLimit(20, style=style), MethodRecorder()
    w3 = Web3(Web3.HTTPProvider(fault_proxy(long_chain.url, recorder, limit).url))
    owner = Owner(w3, _fresh(long_chain))
    owner.delegate()
    first = int(w3.eth.block_number)
    keys = [Account.create() for _ in range(3)]
    policies = []
    for i, key in enumerate(keys):
        long_chain.mine(30)  # each grant in its own 20-block window
        policies.append(_policy(w3, key, i))
        owner.grant(policies[-1])
    long_chain.mine(25)
    recorder.methods.clear()

    assert granted_policies(w3, owner.address) == policies
    assert [policy_from_chain(w3, owner.address, p.session_id) for p in policies] == policies
    assert [r.session_id for r in owner.sessions()] == [p.session_id for p in policies]
    report = build_audit(w3, owner.address)
    assert [s.key for s in report.sessions] == [k.address for k in keys]
    assert 100_000 < report.from_block <= first  # started at the account, not at genesis
    assert limit.widest <= 20 and limit.served > 0
    # no scan from genesis: 100,000 blocks would take 5,000 requests per query; ~130 blocks take ~7
    assert recorder.methods.count("eth_getLogs") < 6 * 15, recorder.methods.count("eth_getLogs")


def test_redelegation_after_sessions_revokes_them_behind_the_limit(long_chain, hostile):
    w3, limit, _ = hostile
    owner = Owner(w3, _fresh(long_chain))
    owner.delegate()
    policy = _policy(w3, Account.create())
    owner.grant(policy)
    long_chain.mine(510)
    owner.undelegate()
    owner.delegate()  # must find the old grant (logs) and revoke it in the same transaction
    assert not owner.session_report(policy).live


def test_cli_status_lists_sessions_behind_the_limit(long_chain, hostile, tmp_path, monkeypatch):
    from smartkeys.cli import main

    w3, limit, _ = hostile
    eoa = _fresh(long_chain)
    owner = Owner(w3, eoa)
    owner.delegate()
    policy = _policy(w3, Account.create())
    owner.grant(policy)
    long_chain.mine(510)
    owner.revoke(policy.session_id)  # a revoked session makes status read the audit too
    monkeypatch.chdir(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    code = main(["--json", "status", "--account", eoa.address], web3=w3, stdin=io.StringIO(""), stdout=out,
                stderr=err, env={"SMARTKEYS_HOME": str(tmp_path)})
    assert code == 0, err.getvalue()
    sessions = json.loads(out.getvalue())["sessions"]
    assert [s["session_id"] for s in sessions] == ["0x" + policy.session_id.hex()]
    assert limit.refused >= 0 and limit.widest <= 500


def test_account_start_block_is_the_first_block_with_a_nonce(long_chain):
    eoa = _fresh(long_chain)
    w3 = long_chain.w3
    assert account_start_block(w3, eoa.address) == w3.eth.block_number + 1  # nonce 0: nothing to read
    long_chain.mine(3)
    Owner(w3, eoa).delegate()
    block = w3.eth.block_number
    long_chain.mine(10)
    assert account_start_block(w3, eoa.address) == block
    assert w3.eth.get_transaction_count(eoa.address, block - 1) == 0


def test_a_pruned_node_delegates_revoking_to_be_safe_and_the_audit_asks_for_from_block(long_chain, fault_proxy):
    from fault_proxy import NoHistoricalState

    from smartkeys.account import account_contract
    from smartkeys.logs import LogQueryError

    pruned = NoHistoricalState(keep=128)
    w3 = Web3(Web3.HTTPProvider(fault_proxy(long_chain.url, pruned, LogRangeLimit(500)).url))
    eoa = _fresh(long_chain)
    long_chain.send({"to": BEEF, "value": 1}, eoa)  # the EOA has a history older than the node keeps
    long_chain.mine(200)
    owner = Owner(w3, eoa)
    owner.delegate()  # cannot tell whether it ever granted: revokes all in the same transaction, to be safe
    assert owner.delegation() == account_address() and pruned.refused > 0
    assert account_contract(long_chain.w3, eoa.address).functions.sessionEpoch().call() == 1
    start = w3.eth.block_number
    policy = _policy(w3, Account.create())
    owner.grant(policy)
    long_chain.mine(200)
    with pytest.raises(LogQueryError, match="--from-block"):
        build_audit(w3, owner.address)
    report = build_audit(w3, owner.address, from_block=start)
    assert [s.session_id for s in report.sessions] == [policy.session_id]
    assert policy_from_chain(w3, owner.address, policy.session_id, from_block=start) == policy
