"""The high-level agent API (``SessionAgent.call/transfer/batch``) and the owner's reports.

- Refusals are raised by the preflight BEFORE anything is signed: the signing and sending functions are
  replaced by ones that fail the test, and nonces (key, bundler, EntryPoint lane) and balances are compared.
- A successful ``transfer`` returns an ``AgentReceipt`` whose predicted ``charges`` equal the on-chain delta.
- ``Owner.session_report`` / ``Owner.sessions`` match the contract's counters.
"""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

import smartkeys.account as account_module
from smartkeys.account import AgentReceipt, SessionAgent, SessionReport
from smartkeys.bundler import BundlerClient
from smartkeys.entrypoint import EntryPoint
from smartkeys.errors import InvalidInputError, get_error_class
from smartkeys.keystore import SessionKey
from smartkeys.policy_codec import Permission, TokenCap
from smartkeys.preflight import SessionWindowError, read_session_state

RECIPIENT = "0x000000000000000000000000000000000000bEEF"
OTHER_TARGET = "0x000000000000000000000000000000000000cafE"
TRANSFER = "transfer(address,uint256)"
CAP = 50 * 10**6
PATHS = ("direct", "user_op")


def err(name: str) -> type:
    return get_error_class(name)


@pytest.fixture(params=PATHS)
def path(request):
    return request.param


@pytest.fixture
def agent(grant, token, session_key, fund):
    fund(session_key.address)
    return grant(session_key, permissions=(Permission(token.address, TRANSFER),),
                 token_caps=(TokenCap(token.address, CAP),), max_uses=10)


def submit_kwargs(path, bundler):
    return {"via": path, "bundler": bundler if path == "user_op" else None}


def snapshot(chain, agent, token, bundler):
    w3 = chain.w3
    return {
        "key_nonce": w3.eth.get_transaction_count(agent.key_address),
        "bundler_nonce": w3.eth.get_transaction_count(bundler.address),
        "lane_nonce": agent.entry_point.get_nonce(agent.account, agent.nonce_key),
        "account_tokens": token.functions.balanceOf(agent.account).call(),
        "recipient_tokens": token.functions.balanceOf(RECIPIENT).call(),
        "account_eth": w3.eth.get_balance(agent.account),
        "key_eth": w3.eth.get_balance(agent.key_address),
        "state": read_session_state(w3, agent.account, agent.policy),
    }


@pytest.fixture
def no_signing(monkeypatch):
    """Make every way of signing or sending fail the test (the preflight must refuse first)."""

    def forbidden(*args, **kwargs):
        raise AssertionError("signed or sent although the preflight should have refused")

    monkeypatch.setattr(account_module, "sign_user_op", forbidden)
    monkeypatch.setattr(account_module, "send_transaction", forbidden)
    monkeypatch.setattr(LocalAccount, "sign_transaction", forbidden)
    monkeypatch.setattr(EntryPoint, "handle_ops", forbidden)


# ------------------------------------------------------------------ refusals before signing


def test_transfer_over_cap_is_refused_with_token_spend_cap_exceeded_before_signing(
    chain, agent, token, bundler, path, no_signing
):
    before = snapshot(chain, agent, token, bundler)
    with pytest.raises(err("TokenSpendCapExceeded")) as info:
        agent.transfer(token.address, RECIPIENT, CAP + 1, **submit_kwargs(path, bundler))
    assert (info.value.spent, info.value.requested, info.value.cap) == (0, CAP + 1, CAP)
    assert snapshot(chain, agent, token, bundler) == before


def test_call_out_of_scope_is_refused_with_call_not_allowed_before_signing(
    chain, agent, token, bundler, path, no_signing
):
    before = snapshot(chain, agent, token, bundler)
    with pytest.raises(err("CallNotAllowed")) as info:
        agent.call(OTHER_TARGET, bytes.fromhex("12345678"), **submit_kwargs(path, bundler))
    assert info.value.target == OTHER_TARGET
    assert info.value.selector_ == bytes.fromhex("12345678")
    assert snapshot(chain, agent, token, bundler) == before


def test_expired_session_is_refused_before_signing(chain, grant, token, session_key, fund, bundler, path, monkeypatch):
    fund(session_key.address)
    until = chain.time() + 100
    agent = grant(session_key, permissions=(Permission(token.address, TRANSFER),),
                  token_caps=(TokenCap(token.address, CAP),), valid_until=until)
    chain.set_next_block_timestamp(until + 10)
    chain.mine()
    before = snapshot(chain, agent, token, bundler)

    def forbidden(*args, **kwargs):
        raise AssertionError("signed although the session expired")

    monkeypatch.setattr(account_module, "sign_user_op", forbidden)
    monkeypatch.setattr(account_module, "send_transaction", forbidden)
    monkeypatch.setattr(LocalAccount, "sign_transaction", forbidden)
    expected = SessionWindowError if path == "user_op" else err("SessionExpired")
    with pytest.raises(expected) as info:
        agent.transfer(token.address, RECIPIENT, 1, **submit_kwargs(path, bundler))
    if path == "direct":
        assert info.value.validUntil == until and info.value.timestamp > until
    else:
        assert info.value.valid_until == until and info.value.code == "AA22"
    assert snapshot(chain, agent, token, bundler) == before


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"via": "user_op"}, "bundler"), ({"via": "carrier_pigeon"}, "via"), ({"via": "direct", "bundler": "x"}, "bundler")],
)
def test_bad_submission_arguments_are_refused_naming_the_field(agent, token, kwargs, field, no_signing):
    with pytest.raises(InvalidInputError) as info:
        agent.transfer(token.address, RECIPIENT, 1, **kwargs)
    assert info.value.field == field


def test_bad_transfer_arguments_are_refused_naming_the_field(agent, token, no_signing):
    with pytest.raises(InvalidInputError) as info:
        agent.transfer(token.address, "not-an-address", 1, via="direct")
    assert info.value.field == "to"
    with pytest.raises(InvalidInputError) as info:
        agent.transfer(token.address, RECIPIENT, -1, via="direct")
    assert info.value.field == "amount"


# ------------------------------------------------------------------ successful uses


def test_transfer_returns_receipt_whose_charges_match_the_ledger_delta(chain, agent, token, bundler, path):
    before = snapshot(chain, agent, token, bundler)
    receipt = agent.transfer(token.address, RECIPIENT, 7 * 10**6, **submit_kwargs(path, bundler))
    after = snapshot(chain, agent, token, bundler)

    assert isinstance(receipt, AgentReceipt)
    assert receipt.success is True and receipt.path == path
    assert receipt.gas_used > 0 and len(receipt.transaction_hash) == 32
    mined = chain.w3.eth.get_transaction_receipt(receipt.transaction_hash)
    assert mined["status"] == 1
    b, a = before["state"], after["state"]
    assert dict(receipt.charges.tokens) == {token.address: a.tokens[token.address].total_spent
                                            - b.tokens[token.address].total_spent}
    assert receipt.charges.tokens[token.address] == 7 * 10**6
    assert receipt.charges.uses == a.uses - b.uses == 1
    assert receipt.charges.native == a.native_spent - b.native_spent == 0
    assert receipt.charges.gas == a.gas_spent - b.gas_spent
    assert before["account_tokens"] - after["account_tokens"] == 7 * 10**6
    if path == "user_op":
        assert receipt.user_op_hash is not None and len(receipt.user_op_hash) == 32
        assert receipt.charges.gas > 0
        assert after["lane_nonce"] == before["lane_nonce"] + 1
        events = agent.entry_point._results(mined)
        assert [e.user_op_hash for e in events] == [receipt.user_op_hash]
        assert events[0].actual_gas_used == receipt.gas_used
    else:
        assert receipt.user_op_hash is None
        assert receipt.charges.gas == 0
        assert receipt.gas_used == mined["gasUsed"]
        assert after["key_nonce"] == before["key_nonce"] + 1


def test_agent_accepts_a_keystore_session_key(chain, owner, token, bundler):
    key = SessionKey(Account.create())
    from smartkeys.policy_codec import SessionPolicy

    policy = SessionPolicy(key=key.address, valid_after=0, valid_until=chain.time() + 3600,
                           permissions=(Permission(token.address, TRANSFER),),
                           token_caps=(TokenCap(token.address, CAP),), gas_budget=10**18)
    owner.grant(policy)
    agent = SessionAgent(chain.w3, owner.address, key, policy)
    assert key.export_private_key_hex()[2:] not in repr(agent)
    receipt = agent.transfer(token.address, RECIPIENT, 3, via="user_op", bundler=bundler)
    assert receipt.success
    assert token.functions.balanceOf(RECIPIENT).call() == 3


def test_batch_charges_the_sum_of_its_transfers(chain, agent, token, bundler):
    from eth_abi import encode

    from smartkeys.policy_codec import selector_of

    data = [selector_of(TRANSFER) + encode(["address", "uint256"], [RECIPIENT, n]) for n in (2, 5)]
    receipt = agent.batch([(token.address, 0, d) for d in data], via="user_op", bundler=bundler)
    state = read_session_state(chain.w3, agent.account, agent.policy)
    assert receipt.charges.tokens[token.address] == 7 == state.tokens[token.address].total_spent
    assert state.uses == 1


def test_user_op_through_a_bundler_client(chain, agent, token, bundler):
    """A minimal in-process ERC-4337 bundler (transport seam) that self-bundles with ``bundler``."""
    from smartkeys.userop import PackedUserOperation

    ep = EntryPoint(chain.w3)
    receipts = {}
    seen_estimates = []

    def transport(request):
        method, params = request["method"], request["params"]
        if method == "eth_chainId":
            result = hex(chain.w3.eth.chain_id)
        elif method == "eth_supportedEntryPoints":  # asked once, before the first signature
            result = [ep.address]
        elif method == "eth_estimateUserOperationGas":
            seen_estimates.append(params[0])
            result = {"preVerificationGas": hex(60_000), "verificationGasLimit": hex(160_000),
                      "callGasLimit": hex(200_000)}
        elif method == "eth_sendUserOperation":
            op = PackedUserOperation.from_rpc(params[0])
            (res,) = ep.handle_ops([op], bundler)
            receipts[res.user_op_hash] = {
                "userOpHash": "0x" + res.user_op_hash.hex(), "entryPoint": ep.address, "sender": res.sender,
                "nonce": hex(res.nonce), "actualGasCost": hex(res.actual_gas_cost),
                "actualGasUsed": hex(res.actual_gas_used), "success": res.success,
                "receipt": {"transactionHash": "0x" + res.transaction_hash.hex(), "blockNumber": "0x1"},
            }
            result = "0x" + res.user_op_hash.hex()
        elif method == "eth_getUserOperationReceipt":
            result = receipts.get(bytes.fromhex(params[0][2:]))
        else:
            raise AssertionError(method)
        return {"jsonrpc": "2.0", "id": request["id"], "result": result}

    client = BundlerClient("http://fake", transport=transport, expected_chain_id=chain.w3.eth.chain_id)
    gas_before = read_session_state(chain.w3, agent.account, agent.policy).gas_spent
    receipt = agent.transfer(token.address, RECIPIENT, 4, via="user_op", bundler=client)
    assert len(seen_estimates) == 1
    assert receipt.success and receipt.path == "user_op" and receipt.user_op_hash in receipts
    state = read_session_state(chain.w3, agent.account, agent.policy)
    assert state.tokens[token.address].total_spent == 4
    # the op's limits came from the bundler's estimate: (160k + 200k + 60k) * maxFeePerGas
    assert receipt.charges.gas == state.gas_spent - gas_before
    assert receipt.charges.gas % (160_000 + 200_000 + 60_000) == 0


# ------------------------------------------------------------------ owner reports


def test_session_report_matches_the_chain_after_a_few_uses(chain, owner, agent, token, bundler):
    agent.transfer(token.address, RECIPIENT, 3 * 10**6, via="direct")
    r2 = agent.transfer(token.address, RECIPIENT, 4 * 10**6, via="user_op", bundler=bundler)
    report = owner.session_report(agent.policy)
    assert isinstance(report, SessionReport)
    assert report.session_id == agent.session_id and report.key == agent.key_address
    assert report.live and report.in_window
    assert (report.uses, report.max_uses, report.uses_remaining) == (2, 10, 8)
    usdc = report.asset(token.address)
    assert (usdc.spent, usdc.cap, usdc.remaining) == (7 * 10**6, CAP, CAP - 7 * 10**6)
    gas = report.asset("gas")
    assert gas.spent == r2.charges.gas and gas.remaining == 10**18 - r2.charges.gas
    assert report.asset("native").spent == 0
    assert (report.valid_after, report.valid_until) == (agent.policy.valid_after, agent.policy.valid_until)


def test_session_report_shows_period_spending(chain, grant, token, session_key, fund, owner):
    fund(session_key.address)
    agent = grant(session_key, permissions=(Permission(token.address, TRANSFER),),
                  token_caps=(TokenCap(token.address, CAP, 3600, 10 * 10**6),))
    agent.transfer(token.address, RECIPIENT, 6 * 10**6, via="direct")
    usdc = owner.session_report(agent.policy).asset(token.address)
    assert (usdc.period, usdc.period_cap, usdc.period_spent, usdc.period_remaining) == (
        3600, 10 * 10**6, 6 * 10**6, 4 * 10**6)


def test_sessions_lists_granted_and_revoked_sessions(chain, owner, grant, token):
    keys = [Account.create() for _ in range(3)]
    agents = [grant(k, permissions=(Permission(token.address, TRANSFER),),
                    token_caps=(TokenCap(token.address, CAP),)) for k in keys]
    owner.revoke(agents[1].session_id)
    reports = owner.sessions()
    by_id = {r.session_id: r for r in reports}
    assert len(reports) == 3
    assert set(by_id) == {a.session_id for a in agents}
    assert [by_id[a.session_id].live for a in agents] == [True, False, True]
    assert [r.key for r in reports] == [k.address for k in keys]
