"""End to end through a real ERC-4337 bundler: Alto 0.0.20 on its own anvil node (fixtures in tests/alto.py).

Alto keeps state (mempool, executor nonce), so the chain is never reverted: every test makes its own owner EOA.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from eth_abi import encode as abi_encode
from eth_account import Account

from smartkeys.account import Call, Owner, SessionAgent
from smartkeys.bundler import BundlerUserOperationError
from smartkeys.deployments import ENTRY_POINT_V08, account_address
from smartkeys.errors import (
    get_error_class,
    register_contract_errors,
)
from smartkeys.policy_codec import Permission, SessionPolicy, TokenCap
from smartkeys.userop import DUMMY_SIGNATURE

TRANSFER = "transfer(address,uint256)"
USDC = 10**6


def _transfer_data(to: str, amount: int) -> bytes:
    return bytes.fromhex("a9059cbb") + abi_encode(["address", "uint256"], [to, amount])


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def token(alto_chain):
    """A 6-decimals MockERC20 on the bundler's chain; the recipient below already holds 1 unit."""
    from smartkeys import artifacts

    address = alto_chain.deploy_create2("test/MockERC20", 4337, ["USD Coin", "USDC", 6])
    contract = alto_chain.w3.eth.contract(address=address, abi=artifacts.load("test/MockERC20")["abi"])
    register_contract_errors(contract.abi)
    return contract


@pytest.fixture
def owner_eoa(alto_chain):
    """A fresh EOA with 10 ether, never delegated."""
    eoa = Account.create()
    alto_chain.send({"to": eoa.address, "value": 10 * 10**18}, alto_chain.deployer)
    return eoa


@pytest.fixture
def recipient(alto_chain, token):
    who = Account.create().address
    alto_chain.send({"to": token.address, "data": token.encode_abi("mint", [who, 1])}, alto_chain.deployer)
    return who


def _mint(chain, token, to, amount):
    chain.send({"to": token.address, "data": token.encode_abi("mint", [to, amount])}, chain.deployer)


def _policy(chain, key, token, *, cap=50 * USDC, **fields):
    fields.setdefault("valid_after", 0)
    fields.setdefault("valid_until", chain.time() + 86_400)
    fields.setdefault("gas_budget", 10**17)
    return SessionPolicy(
        key=key.address, permissions=(Permission(token.address, TRANSFER),),
        token_caps=(TokenCap(token.address, cap),), **fields,
    )


@pytest.fixture
def delegated_owner(alto_chain, owner_eoa, token):
    """owner_eoa delegated (plain set-code transaction) and holding 1,000 USDC."""
    owner = Owner(alto_chain.w3, owner_eoa)
    owner.delegate()
    _mint(alto_chain, token, owner.address, 1_000 * USDC)
    return owner


# --------------------------------------------------------------------------- the bundler process


def _listening_sockets(port: int) -> list[tuple[str, str]]:
    """(file, local address hex) of every LISTEN socket on ``port`` in /proc/net/tcp and tcp6."""
    found = []
    for name in ("tcp", "tcp6"):
        path = Path("/proc/net") / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            address, port_hex = local.rsplit(":", 1)
            if state == "0A" and int(port_hex, 16) == port:
                found.append((name, address))
    return found


def test_alto_listens_on_loopback_only(alto):
    sockets = _listening_sockets(alto.port)
    assert sockets, f"no listening socket on port {alto.port} in /proc/net/tcp*"
    # 0100007F is 127.0.0.1 in /proc's little-endian hex; 0.0.0.0 would be 00000000, [::] all zeros in tcp6
    assert sockets == [("tcp", "0100007F")], f"Alto listens beyond loopback: {sockets}"


def test_alto_answers_with_the_entry_point_and_the_chain_id(alto_client, alto_chain, alto):
    assert alto_client.supported_entry_points() == [ENTRY_POINT_V08]
    assert alto_client.chain_id() == alto_chain.chain_id == 31337
    print(f"\nAlto fixture start: {alto.startup_seconds:.2f} s")


# --------------------------------------------------------------------------- EIP-7702 first operation


def test_first_owner_op_through_alto_delegates_with_eip7702_auth_and_grants_a_session(
    alto_chain, alto_client, owner_eoa, token
):
    w3 = alto_chain.w3
    owner = Owner(w3, owner_eoa)
    assert owner.delegation() is None
    key = Account.create()
    policy = _policy(alto_chain, key, token)
    grant = Call(owner.address, 0, owner.contract.encode_abi("grantSession", [policy.encode()]))

    result = owner.send_user_op([grant], bundler=alto_client)

    assert result.success
    assert owner.delegation() == account_address()
    tx = w3.eth.get_transaction(result.transaction_hash)
    assert tx["type"] == 4, "Alto must send the bundle as a set-code transaction"
    (auth,) = tx["authorizationList"]
    assert w3.to_checksum_address(auth["address"]) == account_address()
    report = owner.session_report(policy)
    assert report.live and report.key == key.address and report.uses == 0
    # the account paid its own way (no paymaster): the EntryPoint charged it the op's actual cost
    assert result.actual_gas_cost > 0 and w3.eth.get_balance(owner.address) < 10 * 10**18
    # the op's nonce advanced on lane 0
    assert owner.entry_point.get_nonce(owner.address, 0) == 1


# --------------------------------------------------------------------------- agent session op


def test_agent_transfer_within_caps_through_alto_updates_balances_and_ledger(
    alto_chain, alto_client, delegated_owner, token, recipient
):
    w3 = alto_chain.w3
    key = Account.create()
    policy = _policy(alto_chain, key, token, cap=50 * USDC, max_uses=5)
    delegated_owner.grant(policy)
    agent = SessionAgent(w3, delegated_owner.address, key, policy)
    before_account = token.functions.balanceOf(delegated_owner.address).call()

    started = time.monotonic()
    receipt = agent.transfer(token.address, recipient, 20 * USDC, bundler=alto_client)
    elapsed = time.monotonic() - started

    assert receipt.path == "user_op" and receipt.success
    assert receipt.user_op_hash is not None and len(receipt.transaction_hash) == 32
    assert w3.eth.get_transaction_receipt(receipt.transaction_hash)["status"] == 1
    assert token.functions.balanceOf(recipient).call() == 20 * USDC + 1
    assert token.functions.balanceOf(delegated_owner.address).call() == before_account - 20 * USDC
    report = delegated_owner.session_report(policy)
    assert report.uses == 1
    assert report.asset(token.address).spent == 20 * USDC
    assert report.asset(token.address).remaining == 30 * USDC
    assert 0 < report.asset("gas").spent <= policy.gas_budget
    bundler_receipt = alto_client.get_user_operation_receipt(receipt.user_op_hash)
    assert bundler_receipt is not None and bundler_receipt.success
    assert bundler_receipt.sender == delegated_owner.address
    print(f"\nagent transfer via Alto (preflight + estimate + send + receipt): {elapsed:.3f} s, "
          f"actualGasUsed {receipt.gas_used}")


def test_user_op_send_to_receipt_time_through_alto(alto_chain, alto_client, delegated_owner, token, recipient):
    """Measures one op from eth_sendUserOperation to its receipt (the op is built and signed beforehand)."""
    key = Account.create()
    policy = _policy(alto_chain, key, token)
    delegated_owner.grant(policy)
    agent = SessionAgent(alto_chain.w3, delegated_owner.address, key, policy)
    calls = [Call(token.address, 0, _transfer_data(recipient, USDC))]
    op = agent.build_user_op(calls, call_gas_limit=0)
    op = agent.sign_user_op(alto_client.estimate_user_operation_gas(op.replace(signature=DUMMY_SIGNATURE)).apply(op))

    started = time.monotonic()
    op_hash = alto_client.send_user_operation(op)
    receipt = alto_client.wait_for_receipt(op_hash, timeout=30)
    elapsed = time.monotonic() - started

    assert receipt.success and receipt.user_op_hash == op_hash
    assert token.functions.balanceOf(recipient).call() == USDC + 1
    assert elapsed < 10
    print(f"\none op send -> receipt through Alto: {elapsed:.3f} s")


# --------------------------------------------------------------------------- refusals


def test_sdk_preflight_refuses_a_transfer_over_the_token_cap_before_the_bundler(
    alto_chain, alto_client, delegated_owner, token, recipient
):
    key = Account.create()
    policy = _policy(alto_chain, key, token, cap=10 * USDC)
    delegated_owner.grant(policy)
    agent = SessionAgent(alto_chain.w3, delegated_owner.address, key, policy)
    block = alto_chain.w3.eth.block_number

    with pytest.raises(get_error_class("TokenSpendCapExceeded")) as info:
        agent.transfer(token.address, recipient, 11 * USDC, bundler=alto_client)

    assert info.value.requested == 11 * USDC and info.value.cap == 10 * USDC
    assert alto_chain.w3.eth.block_number == block
    assert token.functions.balanceOf(recipient).call() == 1


def _assert_nothing_sent(alto_chain, token, recipient, block, delegated_owner, policy):
    assert alto_chain.w3.eth.block_number == block, "something was mined"
    assert token.functions.balanceOf(recipient).call() == 1
    assert delegated_owner.session_report(policy).uses == 0


def test_bundler_estimate_refuses_an_op_over_the_token_cap_with_the_decoded_error_and_send_reverts_on_chain(
    alto_chain, alto_client, delegated_owner, token, recipient
):
    key = Account.create()
    policy = _policy(alto_chain, key, token, cap=10 * USDC)
    delegated_owner.grant(policy)
    agent = SessionAgent(alto_chain.w3, delegated_owner.address, key, policy)
    # built by hand with fixed gas limits: no SDK preflight, no local estimate
    op = agent.build_user_op([Call(token.address, 0, _transfer_data(recipient, 11 * USDC))], call_gas_limit=200_000)

    with pytest.raises(BundlerUserOperationError) as info:
        alto_client.estimate_user_operation_gas(op.replace(signature=DUMMY_SIGNATURE))
    err = info.value
    assert isinstance(err.inner, get_error_class("TokenSpendCapExceeded")), repr(err)
    assert err.inner.requested == 11 * USDC and err.inner.cap == 10 * USDC
    assert "TokenSpendCapExceeded" in str(err)
    print(f"\n{err}")

    # Sent anyway, Alto 0.0.20 accepts it (on eth_sendUserOperation it simulates validation only, which passes):
    # the op is mined and its execution reverts on chain with the same error. The token and the ledger do not
    # move, but the account pays the gas: this is why SessionAgent preflights (and estimates) before sending.
    op_hash = alto_client.send_user_operation(agent.sign_user_op(op))
    receipt = alto_client.wait_for_receipt(op_hash, timeout=30)
    assert not receipt.success
    reverted = receipt.revert()
    assert isinstance(reverted, get_error_class("TokenSpendCapExceeded")), repr(reverted)
    assert token.functions.balanceOf(recipient).call() == 1
    report = delegated_owner.session_report(policy)
    assert report.asset(token.address).spent == 0 and report.uses == 0
    assert report.asset("gas").spent > 0


def test_bundler_refuses_an_op_of_a_not_yet_valid_key_with_aa22_and_sends_nothing(
    alto_chain, alto_client, delegated_owner, token, recipient
):
    key = Account.create()
    policy = _policy(alto_chain, key, token, valid_after=alto_chain.time() + 3_600)
    delegated_owner.grant(policy)
    agent = SessionAgent(alto_chain.w3, delegated_owner.address, key, policy)
    block = alto_chain.w3.eth.block_number
    op = agent.sign_user_op(
        agent.build_user_op([Call(token.address, 0, _transfer_data(recipient, USDC))], call_gas_limit=200_000)
    )

    with pytest.raises(BundlerUserOperationError) as info:
        alto_client.send_user_operation(op)

    err = info.value
    assert err.code == "AA22", repr(err)
    assert err.rpc_code is not None
    print(f"\n{err}")
    _assert_nothing_sent(alto_chain, token, recipient, block, delegated_owner, policy)


def test_bundler_refuses_an_op_over_the_gas_budget_with_aa23_and_the_decoded_error(
    alto_chain, alto_client, delegated_owner, token, recipient
):
    key = Account.create()
    policy = _policy(alto_chain, key, token, gas_budget=10**9)  # 1 gwei of gas: any real op costs more
    delegated_owner.grant(policy)
    agent = SessionAgent(alto_chain.w3, delegated_owner.address, key, policy)
    block = alto_chain.w3.eth.block_number
    op = agent.sign_user_op(
        agent.build_user_op([Call(token.address, 0, _transfer_data(recipient, USDC))], call_gas_limit=200_000)
    )

    with pytest.raises(BundlerUserOperationError) as info:
        alto_client.send_user_operation(op)

    err = info.value
    assert err.code == "AA23", repr(err)
    assert isinstance(err.inner, get_error_class("GasBudgetExceeded")), repr(err)
    assert err.inner.budget == 10**9 and err.inner.requested > err.inner.budget
    print(f"\n{err}")
    _assert_nothing_sent(alto_chain, token, recipient, block, delegated_owner, policy)
