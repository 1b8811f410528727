"""Money rules of ``SmartKeysAccount`` sessions: native value, ERC-20 outflows, periods, gas, events.

Every budget rule is tried on both session paths (``path`` fixture):

- ``direct``: the session key sends ``executeAsSession`` itself; a refusal raises the decoded custom error
  at estimation and nothing is sent.
- ``user_op``: the session key signs a user operation that is self-bundled with a *fixed* call gas limit, so
  the SDK's estimate does not pre-empt the contract: the op is mined, its execution reverts inside the bundle,
  and ``raise_for_failure`` raises the decoded custom error. The gas charged at validation stays charged (the
  account really paid for the op); nothing else changes.

After every refusal the test checks that nothing changed on chain: the session status (uses, native spent,
gas spent except the user op's own gas charge), every ledger word of the session, the capped token balances
of the account and the watched recipients, the account's native balance and EntryPoint deposit (on the user-op
path: changed together by at most the op's own gas cost), and anything else the test watches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from eth_abi import encode
from eth_account import Account
from eth_utils import keccak
from web3.logs import DISCARD

from smartkeys import artifacts
from smartkeys.account import Call, session_status
from smartkeys.errors import FailedOpWithRevert, get_error_class, register_contract_errors
from smartkeys.policy_codec import Permission, PermissionMode, TokenCap, selector_of
from smartkeys.tx import REVERT_EXCEPTIONS, send_transaction

ZERO = "0x0000000000000000000000000000000000000000"
RECIPIENT = "0x000000000000000000000000000000000000bEEF"
OTHER = "0x000000000000000000000000000000000000cafE"
PERIOD = 3_600
CALL_GAS = 400_000  # fixed call gas for user ops: no SDK pre-flight estimate, the contract decides on chain
VERIFICATION_GAS = 150_000
PRE_VERIFICATION_GAS = 50_000
MAX_FEE = 10 * 10**9
TIP = 10**9
TX_GAS = 3_000_000  # explicit gas for transactions expected to be mined (estimating each one is slow on py-evm)
ERC20_ABI = artifacts.load("test/MockERC20")["abi"]

TRANSFER = selector_of("transfer(address,uint256)")
APPROVE = selector_of("approve(address,uint256)")
INCREASE_ALLOWANCE = selector_of("increaseAllowance(address,uint256)")
TRANSFER_FROM = selector_of("transferFrom(address,address,uint256)")
BURN = selector_of("burn(uint256)")
PERMIT = selector_of("permit(address,address,uint256,uint256,uint8,bytes32,bytes32)")
PULL = selector_of("pull(address,address,address,uint256)")
PAYOUT = selector_of("payout(address,address,uint256)")
SWAP_AND_REFUND = selector_of("swapAndRefund(address,uint256,uint256)")
PING = selector_of("ping(uint256)")
FAIL = selector_of("fail(uint256)")


def err(name: str) -> type:
    return get_error_class(name)


# --------------------------------------------------------------------------- path runner


@dataclass
class Runner:
    """Uses a session on one path and checks refusals leave the chain unchanged."""

    chain: Any
    bundler: Any
    path: str
    last_op: Any = None

    @property
    def w3(self):
        return self.chain.w3

    def __call__(self, agent, calls: list[Call]):
        """Run ``calls`` as ``agent``; return the transaction receipt; raise the decoded revert on failure."""
        self.last_op = None
        if self.path == "direct":
            try:  # cheap pre-check; a refusal goes through the SDK's own estimate so it raises as users see it
                self.w3.eth.call({"from": agent.key_address, "to": agent.account, "data": agent.call_data(calls)})
            except REVERT_EXCEPTIONS:
                return agent.send_direct(calls)
            return agent.send_direct(calls, gas=TX_GAS)
        op = agent.build_user_op(
            calls,
            call_gas_limit=CALL_GAS,
            verification_gas_limit=VERIFICATION_GAS,
            pre_verification_gas=PRE_VERIFICATION_GAS,
        ).replace(max_fee_per_gas=MAX_FEE, max_priority_fee_per_gas=TIP)
        op = agent.sign_user_op(op)
        self.last_op = op
        (result,) = agent.entry_point.handle_ops([op], self.bundler, gas=TX_GAS)  # mined: no estimate
        result.raise_for_failure()
        return self.w3.eth.get_transaction_receipt(result.transaction_hash)

    def state(self, agent, watch: dict[str, Callable[[], Any]]) -> dict[str, Any]:
        sid = agent.session_id
        policy = agent.policy
        status = session_status(self.w3, agent.account, sid)
        out: dict[str, Any] = {f"status.{k}": v for k, v in status.items()}
        assets = [c.token for c in policy.token_caps] + [ZERO]
        for asset in assets:
            out[f"ledger.{asset}"] = tuple(agent.contract.functions.sessionLedger(sid, asset).call())
        for cap in policy.token_caps:
            token = self.w3.eth.contract(address=cap.token, abi=ERC20_ABI)
            out[f"balance.{cap.token}.account"] = token.functions.balanceOf(agent.account).call()
        out["native.account"] = self.w3.eth.get_balance(agent.account)
        out["deposit.account"] = agent.entry_point.balance_of(agent.account)  # the account's EntryPoint deposit
        for name, read in watch.items():
            out[name] = read()
        return out

    def refused(self, agent, calls: list[Call], error: str, watch: dict[str, Callable[[], Any]] | None = None):
        """Expect ``calls`` to be refused with custom error ``error``; nothing may change on chain."""
        watch = watch or {}
        before = self.state(agent, watch)
        with pytest.raises(err(error)) as info:
            self(agent, calls)
        after = self.state(agent, watch)
        if self.path == "user_op":
            # The op was mined and failed in execution: its gas was charged at validation and paid by the
            # account. That, and only that, changed.
            cost = self.last_op.max_gas_cost()
            assert after.pop("status.gas_spent") == before.pop("status.gas_spent") + cost
            # what the account paid for the op, from its balance and its EntryPoint deposit together
            paid = (before.pop("native.account") + before.pop("deposit.account")
                    - after.pop("native.account") - after.pop("deposit.account"))
            assert 0 < paid <= cost
        assert after == before
        return info.value


@pytest.fixture(params=["direct", "user_op"])
def path(request):
    return request.param


@pytest.fixture
def run(chain, bundler, path):
    return Runner(chain, bundler, path)


@pytest.fixture
def agent_for(grant, session_key, fund):
    """Grant a policy to the (funded) session key: ``agent_for(permissions=..., **fields)``."""
    fund(session_key.address)

    def _agent(**fields):
        return grant(session_key, **fields)

    return _agent


@pytest.fixture
def target(deploy):
    contract = deploy("test/MockTarget")
    register_contract_errors(contract.abi)
    return contract


@pytest.fixture
def router(deploy):
    return deploy("test/MockRouter")


@pytest.fixture
def token_b(chain, deploy, owner):
    contract = deploy("test/MockERC20", ["Dai", "DAI", 18])
    mint = contract.encode_abi("mint", [owner.address, 10**24])
    chain.send({"to": contract.address, "data": mint}, chain.accounts[8])
    return contract


def native_to(address: str = RECIPIENT) -> Permission:
    return Permission(address, mode=PermissionMode.EMPTY_CALLDATA)


def tcall(token, fn: str, *args) -> Call:
    return Call(token.address, 0, token.encode_abi(fn, list(args)))


def balance_of(token, address: str) -> Callable[[], int]:
    return lambda: token.functions.balanceOf(address).call()


def ledger(agent, asset: str) -> tuple[int, int, int]:
    return tuple(agent.contract.functions.sessionLedger(agent.session_id, asset).call())


def status(agent) -> dict[str, Any]:
    return session_status(agent.w3, agent.account, agent.session_id)


def session_used(agent, receipt) -> list[dict[str, Any]]:
    """Decoded ``SessionUsed`` events of ``receipt``: value, calls [(target, selector)], tokens {token: amount}."""
    out = []
    for log in agent.contract.events.SessionUsed().process_receipt(receipt, errors=DISCARD):
        args = log["args"]
        usage = bytes(args["usage"])
        n = args["callCount"]
        calls = [(agent.w3.to_checksum_address(usage[24 * i : 24 * i + 20]), usage[24 * i + 20 : 24 * i + 24])
                 for i in range(n)]
        rest = usage[24 * n :]
        assert len(rest) % 34 == 0, "usage must end with whole token|amount records"
        tokens = {agent.w3.to_checksum_address(rest[k : k + 20]): int.from_bytes(rest[k + 20 : k + 34], "big")
                  for k in range(0, len(rest), 34)}
        out.append({"session_id": bytes(args["sessionId"]), "value": args["value"], "calls": calls, "tokens": tokens})
    return out


def jump_to(chain, ts: int) -> None:
    """Make ``ts`` the next block's timestamp, also for gas estimates and calls.

    The embedded chain estimates in a child of the latest block stamped max(latest + 1, wall clock), ignoring
    ``set_next_block_timestamp``; an empty block at ts - 1 makes estimate and block agree.
    """
    if ts - 1 > chain.time():
        chain.set_next_block_timestamp(ts - 1)
        chain.mine()
    chain.set_next_block_timestamp(ts)


def next_boundary(chain, period: int = PERIOD) -> int:
    """A period boundary at least a few seconds ahead of the latest block."""
    return (chain.time() // period + 2) * period


# =========================================================================== native value


def test_native_value_equal_to_per_call_cap_is_sent(run, agent_for):
    agent = agent_for(permissions=(native_to(),), native_per_call=100, native_total=1_000)
    before = agent.w3.eth.get_balance(RECIPIENT)
    run(agent, [Call(RECIPIENT, 100)])
    assert agent.w3.eth.get_balance(RECIPIENT) == before + 100
    assert status(agent)["native_spent"] == 100


def test_native_value_one_wei_over_per_call_cap_reverts_with_native_value_above_call_cap(run, agent_for, chain):
    agent = agent_for(permissions=(native_to(),), native_per_call=100, native_total=1_000)
    e = run.refused(agent, [Call(RECIPIENT, 101)], "NativeValueAboveCallCap",
                    {"recipient": lambda: chain.w3.eth.get_balance(RECIPIENT)})
    assert (e.value, e.cap) == (101, 100)


def test_native_cumulative_cap_reached_exactly_then_one_wei_more_reverts_with_native_spend_cap_exceeded(
    run, agent_for, chain
):
    agent = agent_for(permissions=(native_to(),), native_per_call=100, native_total=250)
    for value in (100, 100, 50):
        run(agent, [Call(RECIPIENT, value)])
    assert status(agent)["native_spent"] == 250
    e = run.refused(agent, [Call(RECIPIENT, 1)], "NativeSpendCapExceeded",
                    {"recipient": lambda: chain.w3.eth.get_balance(RECIPIENT)})
    assert (e.spent, e.requested, e.cap) == (250, 1, 250)


def test_native_batch_of_calls_each_under_per_call_cap_summing_over_total_is_refused_before_any_call_runs(
    run, agent_for, chain, target
):
    """Had the calls run first, the batch would revert with MockTarget's Boom(7); the cap check comes first."""
    agent = agent_for(
        permissions=(native_to(), Permission(target.address, PING), Permission(target.address, FAIL)),
        native_per_call=100, native_total=150,
    )
    calls = [Call(target.address, 0, target.encode_abi("ping", [5])), Call(RECIPIENT, 80), Call(RECIPIENT, 80),
             Call(target.address, 0, target.encode_abi("fail", [7]))]
    e = run.refused(agent, calls, "NativeSpendCapExceeded", {
        "recipient": lambda: chain.w3.eth.get_balance(RECIPIENT),
        "counter": lambda: target.functions.counter().call(),
    })
    assert (e.spent, e.requested, e.cap) == (0, 160, 150)
    # the same batch within the cap passes and each call's value counts
    run(agent, [Call(RECIPIENT, 80), Call(RECIPIENT, 70)])
    assert status(agent)["native_spent"] == 150


def test_native_period_cap_refuses_excess_within_a_period_and_refills_at_exact_boundary(run, agent_for, chain):
    agent = agent_for(permissions=(native_to(),), native_per_call=100, native_total=10**6,
                      native_period=PERIOD, native_per_period=120)
    boundary = next_boundary(chain)
    recipient = {"recipient": lambda: chain.w3.eth.get_balance(RECIPIENT)}

    jump_to(chain, boundary - 3)
    run(agent, [Call(RECIPIENT, 100)])
    jump_to(chain, boundary - 2)
    e = run.refused(agent, [Call(RECIPIENT, 21)], "NativePeriodCapExceeded", recipient)
    assert (e.spent, e.requested, e.cap) == (100, 21, 120)
    jump_to(chain, boundary - 1)  # last second of the period: exactly the period cap
    run(agent, [Call(RECIPIENT, 20)])
    assert ledger(agent, ZERO) == (0, 120, boundary // PERIOD - 1)

    jump_to(chain, boundary)  # first second of the next period: refilled
    run(agent, [Call(RECIPIENT, 100)])
    assert chain.time() == boundary
    assert ledger(agent, ZERO) == (0, 100, boundary // PERIOD)
    jump_to(chain, boundary + 1)
    e = run.refused(agent, [Call(RECIPIENT, 21)], "NativePeriodCapExceeded", recipient)
    assert (e.spent, e.requested, e.cap) == (100, 21, 120)
    assert status(agent)["native_spent"] == 220


# =========================================================================== ERC-20 declared outflows


def token_agent(agent_for, token, selectors, cap=1_000, **fields):
    perms = tuple(Permission(token.address, s) for s in selectors)
    extra = fields.pop("extra", ())
    # a router the owner approved earlier may be called only by the owner's named choice
    standing = {"allow_standing_allowances": True} if fields.pop("standing", False) else {}
    return agent_for(permissions=perms + extra, token_caps=(TokenCap(token.address, cap, **fields),), **standing)


def test_token_transfers_across_uses_reach_cap_exactly_then_one_more_unit_reverts_with_token_spend_cap_exceeded(
    run, agent_for, token
):
    agent = token_agent(agent_for, token, [TRANSFER])
    start = token.functions.balanceOf(RECIPIENT).call()
    for amount in (400, 599, 1):
        run(agent, [tcall(token, "transfer", RECIPIENT, amount)])
    assert token.functions.balanceOf(RECIPIENT).call() == start + 1_000
    assert ledger(agent, token.address)[0] == 1_000
    e = run.refused(agent, [tcall(token, "transfer", RECIPIENT, 1)], "TokenSpendCapExceeded",
                    {"recipient": balance_of(token, RECIPIENT)})
    assert (e.token, e.spent, e.requested, e.cap) == (token.address, 1_000, 1, 1_000)


def test_token_approve_above_cap_reverts_and_leaves_allowance_zero(run, agent_for, token, router):
    agent = token_agent(agent_for, token, [APPROVE])
    allowance = {"allowance": lambda: token.functions.allowance(agent.account, router.address).call()}
    e = run.refused(agent, [tcall(token, "approve", router.address, 1_001)], "TokenSpendCapExceeded", allowance)
    assert (e.spent, e.requested, e.cap) == (0, 1_001, 1_000)
    assert allowance["allowance"]() == 0


def test_token_approve_counts_in_full_so_a_later_transfer_over_the_rest_of_the_cap_reverts(
    run, agent_for, token, router
):
    agent = token_agent(agent_for, token, [APPROVE, TRANSFER])
    run(agent, [tcall(token, "approve", router.address, 600)])
    assert ledger(agent, token.address)[0] == 600
    assert token.functions.balanceOf(agent.account).call() == 10**12  # nothing moved, yet 600 are charged
    e = run.refused(agent, [tcall(token, "transfer", RECIPIENT, 401)], "TokenSpendCapExceeded",
                    {"recipient": balance_of(token, RECIPIENT)})
    assert (e.spent, e.requested, e.cap) == (600, 401, 1_000)
    run(agent, [tcall(token, "transfer", RECIPIENT, 400)])
    assert ledger(agent, token.address)[0] == 1_000


def test_token_approve_then_transfer_in_one_batch_over_cap_reverts(run, agent_for, token, router):
    agent = token_agent(agent_for, token, [APPROVE, TRANSFER])
    e = run.refused(agent, [tcall(token, "approve", router.address, 600), tcall(token, "transfer", RECIPIENT, 401)],
                    "TokenSpendCapExceeded", {
                        "allowance": lambda: token.functions.allowance(agent.account, router.address).call(),
                        "recipient": balance_of(token, RECIPIENT)})
    assert (e.spent, e.requested, e.cap) == (0, 1_001, 1_000)


def test_token_increase_allowance_counts_against_cap_and_one_unit_over_reverts(run, agent_for, token, router):
    agent = token_agent(agent_for, token, [INCREASE_ALLOWANCE])
    run(agent, [tcall(token, "increaseAllowance", router.address, 700)])
    run(agent, [tcall(token, "increaseAllowance", router.address, 300)])
    assert token.functions.allowance(agent.account, router.address).call() == 1_000
    assert ledger(agent, token.address)[0] == 1_000
    e = run.refused(agent, [tcall(token, "increaseAllowance", router.address, 1)], "TokenSpendCapExceeded",
                    {"allowance": lambda: token.functions.allowance(agent.account, router.address).call()})
    assert (e.spent, e.requested, e.cap) == (1_000, 1, 1_000)


def test_token_transfer_from_the_account_counts_against_cap_and_over_cap_reverts(run, agent_for, token, owner):
    owner.execute(token.address, 0, token.encode_abi("approve", [owner.address, 10**9]))  # account may move its own
    agent = token_agent(agent_for, token, [TRANSFER_FROM])
    run(agent, [tcall(token, "transferFrom", agent.account, RECIPIENT, 600)])
    assert ledger(agent, token.address)[0] == 600
    e = run.refused(agent, [tcall(token, "transferFrom", agent.account, RECIPIENT, 401)], "TokenSpendCapExceeded",
                    {"recipient": balance_of(token, RECIPIENT)})
    assert (e.spent, e.requested, e.cap) == (600, 401, 1_000)


def test_token_batch_of_two_transfers_summing_over_cap_reverts_with_combined_amount(run, agent_for, token):
    agent = token_agent(agent_for, token, [TRANSFER])
    e = run.refused(agent, [tcall(token, "transfer", RECIPIENT, 600), tcall(token, "transfer", OTHER, 401)],
                    "TokenSpendCapExceeded",
                    {"recipient": balance_of(token, RECIPIENT), "other": balance_of(token, OTHER)})
    assert (e.spent, e.requested, e.cap) == (0, 1_001, 1_000)


def test_declared_token_outflow_over_cap_reverts_the_whole_batch_and_the_preflight_names_the_cap(
    run, agent_for, token, target, chain
):
    """Token amounts are checked after the calls run (each is charged max(declared, measured)), so in a batch
    whose later call reverts on its own, the chain reports that call's error (Boom(7)) -- and nothing moves
    either way. The SDK's preflight still refuses the batch before signing, naming the cap."""
    from smartkeys.preflight import SessionState, preflight

    agent = token_agent(agent_for, token, [TRANSFER], extra=(Permission(target.address, FAIL),))
    calls = [tcall(token, "transfer", RECIPIENT, 1_001), Call(target.address, 0, target.encode_abi("fail", [7]))]
    e = run.refused(agent, calls, "Boom", {"recipient": balance_of(token, RECIPIENT)})
    assert e.args["code"] == 7
    with pytest.raises(err("TokenSpendCapExceeded")) as info:
        preflight(agent.policy, SessionState.fresh(agent.policy, agent.account, now=chain.time()), calls,
                  now=chain.time() + 1, via_user_op=False)
    assert (info.value.spent, info.value.requested, info.value.cap) == (0, 1_001, 1_000)
    e = run.refused(agent, calls[:1], "TokenSpendCapExceeded", {"recipient": balance_of(token, RECIPIENT)})
    assert (e.spent, e.requested, e.cap) == (0, 1_001, 1_000)


def test_declared_amounts_summing_past_uint256_are_refused_with_token_spend_cap_exceeded_not_a_panic(
    run, agent_for, token, router
):
    agent = token_agent(agent_for, token, [APPROVE])
    calls = [tcall(token, "approve", router.address, 2**255), tcall(token, "approve", router.address, 2**255)]
    e = run.refused(agent, calls, "TokenSpendCapExceeded",
                    {"allowance": lambda: token.functions.allowance(agent.account, router.address).call()})
    assert (e.spent, e.requested, e.cap) == (0, 2**256 - 1, 1_000)


def test_token_period_cap_refuses_excess_within_a_period_and_refills_at_exact_boundary(run, agent_for, chain, token):
    agent = token_agent(agent_for, token, [TRANSFER], cap=10**9, period=PERIOD, per_period=500)
    boundary = next_boundary(chain)
    watch = {"recipient": balance_of(token, RECIPIENT)}

    jump_to(chain, boundary - 3)
    run(agent, [tcall(token, "transfer", RECIPIENT, 300)])
    jump_to(chain, boundary - 2)
    e = run.refused(agent, [tcall(token, "transfer", RECIPIENT, 201)], "TokenPeriodCapExceeded", watch)
    assert (e.token, e.spent, e.requested, e.cap) == (token.address, 300, 201, 500)
    jump_to(chain, boundary - 1)
    run(agent, [tcall(token, "transfer", RECIPIENT, 200)])
    assert ledger(agent, token.address) == (500, 500, boundary // PERIOD - 1)

    jump_to(chain, boundary)
    run(agent, [tcall(token, "transfer", RECIPIENT, 500)])
    assert ledger(agent, token.address) == (1_000, 500, boundary // PERIOD)
    jump_to(chain, boundary + 1)
    e = run.refused(agent, [tcall(token, "transfer", RECIPIENT, 1)], "TokenPeriodCapExceeded", watch)
    assert (e.spent, e.requested, e.cap) == (500, 1, 500)


def test_token_cumulative_cap_applies_even_when_period_cap_has_room(run, agent_for, chain, token):
    agent = token_agent(agent_for, token, [TRANSFER], cap=600, period=PERIOD, per_period=500)
    boundary = next_boundary(chain)
    jump_to(chain, boundary - 1)
    run(agent, [tcall(token, "transfer", RECIPIENT, 500)])
    jump_to(chain, boundary)
    e = run.refused(agent, [tcall(token, "transfer", RECIPIENT, 101)], "TokenSpendCapExceeded",
                    {"recipient": balance_of(token, RECIPIENT)})
    assert (e.spent, e.requested, e.cap) == (500, 101, 600)


# =========================================================================== measured outflows


@pytest.fixture
def approved_router(owner, token, router):
    """The owner approved the router EARLIER (before any session), for far more than any session cap."""
    owner.execute(token.address, 0, token.encode_abi("approve", [router.address, 10**11]))
    return router


def test_pull_through_allowance_owner_gave_router_earlier_is_measured_and_charged(
    run, agent_for, token, approved_router
):
    router = approved_router
    agent = token_agent(agent_for, token, [], extra=(Permission(router.address, PULL),), standing=True)
    pull = router.encode_abi("pull", [token.address, agent.account, RECIPIENT, 600])
    receipt = run(agent, [Call(router.address, 0, pull)])
    assert ledger(agent, token.address)[0] == 600
    (used,) = session_used(agent, receipt)
    assert used["tokens"] == {token.address: 600}


def test_pull_through_earlier_router_allowance_over_cap_reverts_with_token_spend_cap_exceeded(
    run, agent_for, token, approved_router
):
    router = approved_router
    agent = token_agent(agent_for, token, [], extra=(Permission(router.address, PULL),), standing=True)
    pull = lambda amount: Call(router.address, 0,  # noqa: E731
                               router.encode_abi("pull", [token.address, agent.account, RECIPIENT, amount]))
    run(agent, [pull(600)])
    e = run.refused(agent, [pull(401)], "TokenSpendCapExceeded", {
        "recipient": balance_of(token, RECIPIENT),
        "allowance": lambda: token.functions.allowance(agent.account, router.address).call(),
    })
    assert (e.token, e.spent, e.requested, e.cap) == (token.address, 600, 401, 1_000)
    # a single pull over the cap is refused as well
    e = run.refused(agent, [pull(1_001)], "TokenSpendCapExceeded", {"recipient": balance_of(token, RECIPIENT)})
    assert (e.spent, e.requested) == (600, 1_001)


@pytest.mark.parametrize("order", ["pull_then_payout", "payout_then_pull"])
def test_inflow_in_a_separate_call_of_the_batch_does_not_offset_a_pull(
    run, agent_for, chain, token, approved_router, order
):
    router = approved_router
    chain.send({"to": token.address, "data": token.encode_abi("mint", [router.address, 10**6])}, chain.accounts[8])
    agent = token_agent(agent_for, token, [],
                        extra=(Permission(router.address, PULL), Permission(router.address, PAYOUT)), standing=True)
    pull = Call(router.address, 0, router.encode_abi("pull", [token.address, agent.account, RECIPIENT, 100]))
    payout = Call(router.address, 0, router.encode_abi("payout", [token.address, agent.account, 100]))
    balance = token.functions.balanceOf(agent.account).call()
    receipt = run(agent, [pull, payout] if order == "pull_then_payout" else [payout, pull])
    assert token.functions.balanceOf(agent.account).call() == balance  # net zero for the account ...
    assert ledger(agent, token.address)[0] == 100  # ... but the outflow is charged in full
    assert session_used(agent, receipt)[0]["tokens"] == {token.address: 100}
    over = Call(router.address, 0, router.encode_abi("pull", [token.address, agent.account, RECIPIENT, 901]))
    e = run.refused(agent, [over], "TokenSpendCapExceeded", {"recipient": balance_of(token, RECIPIENT)})
    assert (e.spent, e.requested) == (100, 901)


@pytest.mark.parametrize(("pulled", "refunded", "charged"), [(300, 300, 0), (300, 100, 200)])
def test_limitation_pull_and_refund_inside_one_call_is_charged_only_the_net_balance_decrease(
    run, agent_for, chain, token, owner, router, pulled, refunded, charged
):
    """LIMITATION (documented, not a loss): outflows are measured as the account's balance decrease across each
    call, so an inflow *inside the same call* nets against the outflow. ``swapAndRefund(300, 300)`` moves 300 out
    and 300 back and is charged 0; ``swapAndRefund(300, 100)`` is charged 200. The account's real loss in the
    capped token is exactly what is charged, but security.md's "never nets inflows" holds only across calls."""
    chain.send({"to": token.address, "data": token.encode_abi("mint", [router.address, 10**6])}, chain.accounts[8])
    owner.execute(token.address, 0, token.encode_abi("approve", [router.address, 10**11]))
    agent = token_agent(agent_for, token, [], extra=(Permission(router.address, SWAP_AND_REFUND),), standing=True)
    balance = token.functions.balanceOf(agent.account).call()
    swap = router.encode_abi("swapAndRefund", [token.address, pulled, refunded])
    receipt = run(agent, [Call(router.address, 0, swap)])
    assert token.functions.balanceOf(agent.account).call() == balance - charged
    assert ledger(agent, token.address)[0] == charged
    expected = {token.address: charged} if charged else {}
    assert session_used(agent, receipt)[0]["tokens"] == expected


def test_limitation_swap_and_refund_whose_net_exceeds_cap_is_refused(run, agent_for, chain, token, owner, router):
    chain.send({"to": token.address, "data": token.encode_abi("mint", [router.address, 10**6])}, chain.accounts[8])
    owner.execute(token.address, 0, token.encode_abi("approve", [router.address, 10**11]))
    agent = token_agent(agent_for, token, [], extra=(Permission(router.address, SWAP_AND_REFUND),), standing=True)
    e = run.refused(agent, [Call(router.address, 0, router.encode_abi("swapAndRefund", [token.address, 5_000, 3_999]))],
                    "TokenSpendCapExceeded", {"router": balance_of(token, router.address)})
    assert (e.spent, e.requested, e.cap) == (0, 1_001, 1_000)


def test_token_specific_outflow_burn_is_measured_charged_and_refused_over_cap(run, agent_for, token):
    agent = token_agent(agent_for, token, [BURN])
    supply = token.functions.totalSupply().call()
    receipt = run(agent, [tcall(token, "burn", 600)])
    assert token.functions.totalSupply().call() == supply - 600
    assert ledger(agent, token.address)[0] == 600
    assert session_used(agent, receipt)[0]["tokens"] == {token.address: 600}
    e = run.refused(agent, [tcall(token, "burn", 401)], "TokenSpendCapExceeded",
                    {"supply": lambda: token.functions.totalSupply().call()})
    assert (e.token, e.spent, e.requested, e.cap) == (token.address, 600, 401, 1_000)


def test_uncapped_token_outflow_is_not_charged_to_a_capped_token(run, agent_for, token, token_b):
    """Measurement watches the capped tokens only; moving another token (which the owner allowed uncapped, by
    the named flag) does not touch their ledgers."""
    agent = agent_for(permissions=(Permission(token_b.address, TRANSFER), Permission(token.address, TRANSFER)),
                      token_caps=(TokenCap(token.address, 1_000),), allow_uncapped_assets=True)
    run(agent, [tcall(token_b, "transfer", RECIPIENT, 10**20), tcall(token, "transfer", RECIPIENT, 5)])
    assert ledger(agent, token.address)[0] == 5


# =========================================================================== permit


def permit_digest(token, owner_address: str, spender: str, value: int, nonce: int, deadline: int) -> bytes:
    typehash = keccak(text="Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)")
    struct = keccak(typehash + encode(["address", "address", "uint256", "uint256", "uint256"],
                                      [owner_address, spender, value, nonce, deadline]))
    return keccak(b"\x19\x01" + bytes(token.functions.DOMAIN_SEPARATOR().call()) + struct)


def session_signed_permit(chain, token, agent, session_key, spender: str, value: int):
    deadline = chain.time() + 3_600
    nonce = token.functions.nonces(agent.account).call()
    digest = permit_digest(token, agent.account, spender, value, nonce, deadline)
    sig = Account.unsafe_sign_hash(digest, session_key.key)
    args = [agent.account, spender, value, deadline, sig.v, sig.r.to_bytes(32, "big"), sig.s.to_bytes(32, "big")]
    return digest, sig, args


def test_permit_through_the_session_on_a_capped_token_is_refused_before_it_runs(
    run, agent_for, chain, token, session_key
):
    """``permit`` gives a third party power over the balance that no measurement sees: on a capped token it is
    refused at use even under an any-function permission (and at grant as an exact permission)."""
    spender = chain.accounts[5].address
    agent = agent_for(permissions=(Permission(token.address, mode=PermissionMode.ANY_SELECTOR),),
                      token_caps=(TokenCap(token.address, 1_000),))
    _, _, args = session_signed_permit(chain, token, agent, session_key, spender, 10**12)
    e = run.refused(agent, [tcall(token, "permit", *args)], "TokenFunctionNotAccountable", {
        "allowance": lambda: token.functions.allowance(agent.account, spender).call(),
        "nonce": lambda: token.functions.nonces(agent.account).call(),
    })
    assert (e.token, e.selector_) == (token.address, PERMIT)


def test_permit_signed_by_session_key_submitted_directly_to_token_reverts(chain, agent_for, token, session_key):
    """The agent does not need the session to submit a permit: anyone can. It still fails (ECDSA needs the owner
    key) and the account's ERC-1271 refuses the session key's signature over the same digest."""
    spender = chain.accounts[5].address
    agent = token_agent(agent_for, token, [TRANSFER])
    digest, sig, args = session_signed_permit(chain, token, agent, session_key, spender, 10**12)
    with pytest.raises(err("ERC2612InvalidSigner")) as info:
        send_transaction(chain.w3, session_key, {"to": token.address, "data": token.encode_abi("permit", args)})
    assert (info.value.signer, info.value.owner) == (session_key.address, agent.account)
    assert token.functions.allowance(agent.account, spender).call() == 0
    assert token.functions.nonces(agent.account).call() == 0
    assert bytes(agent.contract.functions.isValidSignature(digest, bytes(sig.signature)).call()) == b"\xff\xff\xff\xff"


# =========================================================================== gas is money


def fixed_op(agent, calls, *, call_gas=CALL_GAS, **pm):
    op = agent.build_user_op(calls, call_gas_limit=call_gas, verification_gas_limit=VERIFICATION_GAS,
                             pre_verification_gas=PRE_VERIFICATION_GAS)
    return op.replace(max_fee_per_gas=MAX_FEE, max_priority_fee_per_gas=TIP, **pm)


OP_COST = (VERIFICATION_GAS + CALL_GAS + PRE_VERIFICATION_GAS) * MAX_FEE


@pytest.fixture
def ping_agent(agent_for, target):
    def _agent(**fields):
        return agent_for(permissions=(Permission(target.address, PING),), **fields)

    return _agent


def ping(target, x=1) -> list[Call]:
    return [Call(target.address, 0, target.encode_abi("ping", [x]))]


def test_session_user_op_charges_its_max_gas_cost_to_gas_budget(chain, bundler, ping_agent, target):
    agent = ping_agent(gas_budget=10**18)
    op = agent.sign_user_op(fixed_op(agent, ping(target)))
    assert op.max_gas_cost() == OP_COST
    (result,) = agent.entry_point.handle_ops([op], bundler)
    result.raise_for_failure()
    assert status(agent)["gas_spent"] == OP_COST
    assert result.actual_gas_cost <= OP_COST
    # The charge is read from the status word (no per-op event: it cost ~1.4k gas and repeated that word).
    assert not any(e.get("name") == "SessionGasCharged" for e in agent.contract.abi)


@pytest.mark.parametrize(("budget_slack", "allowed"), [(0, True), (-1, False)])
def test_second_user_op_is_allowed_only_if_its_max_cost_fits_the_remaining_gas_budget(
    chain, bundler, ping_agent, target, budget_slack, allowed
):
    agent = ping_agent(gas_budget=2 * OP_COST + budget_slack)
    agent.entry_point.handle_ops([agent.sign_user_op(fixed_op(agent, ping(target)))], bundler)[0].raise_for_failure()
    op = agent.sign_user_op(fixed_op(agent, ping(target)))
    if allowed:
        agent.entry_point.handle_ops([op], bundler)[0].raise_for_failure()
        assert status(agent)["gas_spent"] == 2 * OP_COST
        return
    nonce = agent.entry_point.get_nonce(agent.account, agent.nonce_key)
    before = (status(agent), target.functions.counter().call(), chain.w3.eth.get_balance(agent.account))
    with pytest.raises(FailedOpWithRevert) as info:
        agent.entry_point.handle_ops([op], bundler)
    assert info.value.code == "AA23"
    inner = info.value.inner
    assert isinstance(inner, err("GasBudgetExceeded"))
    assert (inner.spent, inner.requested, inner.budget) == (OP_COST, OP_COST, 2 * OP_COST - 1)
    assert (status(agent), target.functions.counter().call(), chain.w3.eth.get_balance(agent.account)) == before
    assert agent.entry_point.get_nonce(agent.account, agent.nonce_key) == nonce


def test_gas_budget_zero_refuses_every_self_paid_user_op_but_direct_use_still_works(chain, bundler, ping_agent, target):
    agent = ping_agent(gas_budget=0)
    op = agent.sign_user_op(fixed_op(agent, ping(target), call_gas=1))  # even a tiny op costs something
    with pytest.raises(FailedOpWithRevert) as info:
        agent.entry_point.handle_ops([op], bundler)
    assert info.value.code == "AA23"
    inner = info.value.inner
    assert isinstance(inner, err("GasBudgetExceeded"))
    assert (inner.spent, inner.requested, inner.budget) == (0, op.max_gas_cost(), 0)
    assert status(agent)["gas_spent"] == 0
    assert target.functions.counter().call() == 0
    agent.send_direct(ping(target, 3))  # the key pays its own gas on the direct path
    assert target.functions.counter().call() == 3


@pytest.fixture
def paymaster(chain, deploy):
    pm = deploy("test/MockPaymaster")
    chain.send({"to": pm.address, "value": 10**18, "data": pm.encode_abi("deposit", [])}, chain.accounts[6])
    return pm


def test_user_op_with_a_paymaster_the_policy_does_not_list_is_refused_with_paymaster_not_allowed(
    chain, bundler, ping_agent, target, paymaster
):
    agent = ping_agent(gas_budget=10**18)
    op = agent.sign_user_op(fixed_op(agent, ping(target), paymaster=paymaster.address,
                                     paymaster_verification_gas_limit=60_000, paymaster_post_op_gas_limit=10_000))
    before = (status(agent), agent.entry_point.balance_of(paymaster.address))
    with pytest.raises(FailedOpWithRevert) as info:
        agent.entry_point.handle_ops([op], bundler)
    assert info.value.code == "AA23"
    assert isinstance(info.value.inner, err("PaymasterNotAllowed"))
    assert info.value.inner.paymaster == paymaster.address
    assert (status(agent), agent.entry_point.balance_of(paymaster.address)) == before
    assert target.functions.counter().call() == 0


def test_user_op_with_a_listed_paymaster_charges_its_max_cost_to_the_gas_budget(
    chain, bundler, ping_agent, target, paymaster
):
    """A paymaster may take its cost back from the account later (a token paymaster does, in postOp), so a
    sponsored op counts against the gas budget like any other, paymaster gas limits included."""
    pm_fields = dict(paymaster=paymaster.address, paymaster_verification_gas_limit=60_000,
                     paymaster_post_op_gas_limit=10_000)
    cost = OP_COST + 70_000 * MAX_FEE
    refused = ping_agent(gas_budget=cost - 1, paymasters=(paymaster.address,))
    op = refused.sign_user_op(fixed_op(refused, ping(target, 2), **pm_fields))
    assert op.max_gas_cost() == cost
    deposit = refused.entry_point.balance_of(paymaster.address)
    with pytest.raises(FailedOpWithRevert) as info:
        refused.entry_point.handle_ops([op], bundler)
    assert info.value.code == "AA23"
    assert (info.value.inner.spent, info.value.inner.requested, info.value.inner.budget) == (0, cost, cost - 1)
    assert status(refused)["gas_spent"] == 0
    assert refused.entry_point.balance_of(paymaster.address) == deposit
    assert target.functions.counter().call() == 0

    agent = ping_agent(gas_budget=cost, paymasters=(paymaster.address,), salt=1)
    account_eth = chain.w3.eth.get_balance(agent.account)
    op = agent.sign_user_op(fixed_op(agent, ping(target, 2), **pm_fields))
    (result,) = agent.entry_point.handle_ops([op], bundler)
    result.raise_for_failure()
    assert target.functions.counter().call() == 2
    assert status(agent)["gas_spent"] == cost
    assert chain.w3.eth.get_balance(agent.account) == account_eth  # the paymaster paid the EntryPoint
    assert agent.entry_point.balance_of(paymaster.address) == deposit - result.actual_gas_cost


def test_gas_charged_at_validation_stays_charged_when_execution_reverts(chain, bundler, agent_for):
    agent = agent_for(permissions=(native_to(),), native_per_call=10, native_total=10)
    op = agent.sign_user_op(fixed_op(agent, [Call(RECIPIENT, 11)]))
    (result,) = agent.entry_point.handle_ops([op], bundler)
    assert not result.success
    assert isinstance(result.revert, err("NativeValueAboveCallCap"))
    assert status(agent)["gas_spent"] == OP_COST
    assert status(agent)["native_spent"] == 0


# =========================================================================== re-grant and events


def test_regranting_the_same_policy_is_refused_and_resets_nothing(run, agent_for, owner, chain, token):
    agent = agent_for(permissions=(native_to(), Permission(token.address, TRANSFER)),
                      token_caps=(TokenCap(token.address, 1_000, PERIOD, 1_000),),
                      native_per_call=100, native_total=100, native_period=PERIOD, native_per_period=100, max_uses=1)
    calls = [Call(RECIPIENT, 100), tcall(token, "transfer", RECIPIENT, 1_000)]
    run(agent, calls)
    spent = status(agent)
    assert (spent["uses"], spent["native_spent"]) == (1, 100)
    assert ledger(agent, token.address)[:2] == (1_000, 1_000)

    before = run.state(agent, {"recipient": balance_of(token, RECIPIENT)})
    with pytest.raises(err("SessionAlreadyGranted")) as info:
        owner.grant(agent.policy)
    assert info.value.session_id == agent.session_id
    # On the contract itself too (the SDK refuses before sending; a raw transaction reverts).
    with pytest.raises(err("SessionAlreadyGranted")):
        send_transaction(chain.w3, owner._account, {"to": owner.address, "data": owner.contract.encode_abi(
            "grantSession", [agent.policy.encode()])})
    assert run.state(agent, {"recipient": balance_of(token, RECIPIENT)}) == before
    e = run.refused(agent, calls, "UsageLimitReached", {"recipient": balance_of(token, RECIPIENT)})
    assert e.max_uses == 1


def test_session_used_event_carries_value_calls_and_per_token_amounts_matching_the_ledgers(
    run, agent_for, chain, token, token_b, approved_router
):
    router = approved_router
    agent = agent_for(
        permissions=(native_to(), Permission(token.address, TRANSFER), Permission(router.address, PULL),
                     Permission(token_b.address, BURN)),
        token_caps=(TokenCap(token.address, 10_000), TokenCap(token_b.address, 10_000)),
        native_per_call=100, native_total=1_000, allow_standing_allowances=True,
    )
    calls = [
        Call(RECIPIENT, 40),
        tcall(token, "transfer", RECIPIENT, 300),  # declared
        Call(router.address, 0, router.encode_abi("pull", [token.address, agent.account, OTHER, 200])),  # measured
        tcall(token_b, "burn", 70),  # measured, second token
        Call(RECIPIENT, 60),
    ]
    receipt = run(agent, calls)
    (used,) = session_used(agent, receipt)
    assert used["session_id"] == agent.session_id
    assert used["value"] == 100
    assert used["calls"] == [(RECIPIENT, b"\x00" * 4), (token.address, TRANSFER), (router.address, PULL),
                             (token_b.address, BURN), (RECIPIENT, b"\x00" * 4)]
    assert used["tokens"] == {token.address: 500, token_b.address: 70}
    # Byte-exact: the event's data is the standard ABI encoding, usage as abi.encodePacked would build it
    # (the contract writes it in place), zero-padded to a whole word.
    usage = b"".join(bytes.fromhex(a[2:]) + sel for a, sel in used["calls"])
    usage += bytes.fromhex(token.address[2:]) + (500).to_bytes(14, "big")
    usage += bytes.fromhex(token_b.address[2:]) + (70).to_bytes(14, "big")
    assert len(usage) == 5 * 24 + 2 * 34
    topic = keccak(text="SessionUsed(bytes32,uint256,uint8,bytes)")
    (raw,) = [log for log in receipt["logs"] if bytes(log["topics"][0]) == topic]
    assert [bytes(t) for t in raw["topics"]] == [topic, agent.session_id]
    assert bytes(raw["data"]) == encode(["uint256", "uint8", "bytes"], [100, 5, usage])
    assert ledger(agent, token.address)[0] == 500
    assert ledger(agent, token_b.address)[0] == 70
    assert status(agent)["native_spent"] == 100


def test_two_ops_in_one_bundle_cannot_both_spend_the_last_units_of_a_token_cap(chain, bundler, agent_for, token):
    agent = token_agent(agent_for, token, [TRANSFER])
    nonce = agent.entry_point.get_nonce(agent.account, agent.nonce_key)
    ops = []
    for i, to in enumerate((RECIPIENT, OTHER)):
        op = fixed_op(agent, [tcall(token, "transfer", to, 600)]).replace(nonce=nonce + i)
        ops.append(agent.sign_user_op(op))
    first, second = agent.entry_point.handle_ops(ops, bundler, gas=TX_GAS)
    assert first.success and not second.success
    assert isinstance(second.revert, err("TokenSpendCapExceeded"))
    assert (second.revert.spent, second.revert.requested, second.revert.cap) == (600, 600, 1_000)
    assert token.functions.balanceOf(OTHER).call() == 0
    assert ledger(agent, token.address)[0] == 600
    assert status(agent)["gas_spent"] == 2 * OP_COST
