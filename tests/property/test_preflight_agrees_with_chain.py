"""Property: offline ``preflight`` allows exactly what ``SmartKeysAccount`` allows, and refuses with the
same error (class and field values) when both refuse.

Each example grants a random policy (permissions on a MockTarget, the USDC MockERC20 and a plain
recipient; token cap, native caps and periods, max uses, window, gas budget), then runs 1-3 random uses
(random calls, values and amounts, random time offsets pinned with ``set_next_block_timestamp``, the odd
revoke or revoke-all in between) on the direct path or, for about one example in five, as user
operations, under random rate limits (a minimum interval, uses per window). Before each use the session state is read from chain with ``read_session_state`` and
``preflight`` predicts the outcome; the use is then mined with an explicit gas limit (no estimate) and
its outcome read back:

- direct path: the receipt status; a failure is replayed with ``eth_call`` on the block it was mined
  in (same timestamp, same state) to get the revert data;
- user-op path: a validation failure reverts ``handleOps`` (replayed the same way: ``FailedOp`` /
  ``FailedOpWithRevert``, whose inner error is the account's); an execution failure is the
  ``UserOperationRevertReason`` of the mined bundle.

On success the chain's new state must equal ``state.after(policy, charges)``. Calls are chosen so that
the called contracts themselves never revert (balances suffice, values only go to payable functions),
which is the one thing preflight cannot know offline. Burns (measured outflows) are passed as
``expected_outflows``.
"""

from __future__ import annotations

import dataclasses

import pytest
from eth_abi import encode
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from smartkeys.account import Call, SessionAgent
from smartkeys.argument_rules import ArgumentRule, RuleOp
from smartkeys.deployments import ENTRY_POINT_V08
from smartkeys.errors import (
    FailedOp,
    FailedOpWithRevert,
    SmartKeysError,
    UserOperationError,
    decode_revert,
)
from smartkeys.policy_codec import Permission, PermissionMode, SessionPolicy, TokenCap, selector_of
from smartkeys.preflight import SessionWindowError, preflight, read_session_state
from smartkeys.tx import REVERT_EXCEPTIONS, revert_data_of

RECIPIENT = "0x000000000000000000000000000000000000bEEF"
STRANGER = "0x000000000000000000000000000000000000cafE"
ZERO = "0x0000000000000000000000000000000000000000"
TX_GAS = 3_000_000
CALL_GAS = 500_000
VERIFICATION_GAS = 150_000
PRE_VERIFICATION_GAS = 50_000
MAX_FEE = 10 * 10**9
TIP = 10**9
OP_COST = (CALL_GAS + VERIFICATION_GAS + PRE_VERIFICATION_GAS) * MAX_FEE  # 7e15 wei

EXACT, ANY, EMPTY = PermissionMode.EXACT, PermissionMode.ANY_SELECTOR, PermissionMode.EMPTY_CALLDATA
PERMISSIONS = [
    ("target", "ping(uint256)", EXACT),
    ("target", "other()", EXACT),
    ("target", None, ANY),
    ("target", None, EMPTY),
    ("token", "transfer(address,uint256)", EXACT),
    ("token", "approve(address,uint256)", EXACT),
    ("token", None, ANY),
    ("recipient", None, EMPTY),
    ("recipient", None, ANY),
    # argument rules (ArgumentRules.sol): a recipient list AND an amount bound; a ranged ping; and a second
    # transfer permission that is an alternative (OR) to the first
    ("token", "transfer(address,uint256)", EXACT, (
        ArgumentRule(0, RuleOp.ONE_OF, "address", (RECIPIENT, STRANGER)),
        ArgumentRule(1, RuleOp.LE, "uint256", (10**6,)))),
    ("target", "ping(uint256)", EXACT, (ArgumentRule(0, RuleOp.RANGE, "uint256", (2, 4)),)),
    ("token", "transfer(address,uint256)", EXACT, (ArgumentRule(1, RuleOp.GE, "uint256", (3 * 10**6,)),)),
]
#: refused at grant, so never drawn together: a permission without rules next to one with rules for the same
#: call, and a wildcard on the target of a ruled permission (``RulesBypassed``: it would void the rules)
_EXCLUSIVE = [(4, 9), (4, 11), (0, 10), (2, 10), (6, 9), (6, 11)]

ether_values = st.sampled_from([0, 0, 1, 10**15, 10**15 + 1, 10**18, 10**18 + 1])
token_amounts = st.sampled_from([0, 1, 10**6, 10**6 + 1, 3 * 10**6, 10**9, 10**11])
approve_amounts = st.one_of(token_amounts, st.sampled_from([2**112 - 1, 2**255, 2**256 - 1]))

#: (kind, value, amount, pick): "permitted" builds a call some granted permission covers (``pick`` chooses
#: which, and which function for a wildcard); the other kinds are free-form and mostly refused.
call_specs = st.one_of(
    st.tuples(st.just("permitted"), ether_values, approve_amounts, st.integers(0, 15)),
    st.tuples(st.just("permitted"), st.one_of(st.just(0), ether_values), token_amounts, st.integers(0, 15)),
    st.tuples(st.just("permitted"), st.one_of(st.just(0), ether_values), token_amounts, st.integers(0, 15)),
    st.tuples(st.sampled_from(["ping", "other", "receive", "native_recipient"]), ether_values, st.just(0), st.just(0)),
    st.tuples(st.just("ping_wide"), ether_values, st.integers(0, 4), st.just(0)),
    st.tuples(st.sampled_from(["transfer_stranger", "transfer_other"]), st.just(0), token_amounts, st.just(0)),
    st.tuples(st.sampled_from(["transfer", "increaseAllowance", "burn"]), st.just(0), token_amounts, st.just(0)),
    st.tuples(st.just("approve"), st.just(0), approve_amounts, st.just(0)),
    st.tuples(st.sampled_from(["multicall", "forbidden_self", "forbidden_ep", "forbidden_zero", "stranger"]),
              st.just(0), st.just(0), st.just(0)),
    st.tuples(st.just("short"), st.just(0), st.integers(1, 3), st.just(0)),
)

uses = st.lists(
    st.tuples(
        st.sampled_from([""] * 18 + ["revoke", "revoke_all"]),
        st.one_of(*[st.integers(1, 30)] * 5, st.sampled_from([3_600, 3_600, 7_200, 400_000])),
        st.lists(call_specs, min_size=1, max_size=3),
    ),
    min_size=1,
    max_size=4,
)

policies = st.fixed_dictionaries(
    {
        "perms": st.lists(st.integers(0, len(PERMISSIONS) - 1), min_size=1, max_size=4, unique=True).filter(
            lambda ps: not any(a in ps and b in ps for a, b in _EXCLUSIVE)),
        "token_cap": st.one_of(
            st.none(),
            st.tuples(
                st.sampled_from([0, 10**6, 5 * 10**6, 10**9, 2**112 - 1]),
                st.sampled_from([(0, 0), (60, 10**6), (3_600, 3 * 10**6), (3_600, 2**112 - 1)]),
            ),
        ),
        "max_uses": st.sampled_from([0, 0, 1, 2]),
        "native_per_call": st.sampled_from([0, 10**15, 10**18]),
        "native_total": st.sampled_from([0, 10**15, 2 * 10**15, 10**18, 10**19]),
        "native_period": st.sampled_from([(0, 0), (0, 0), (60, 10**15), (3_600, 2 * 10**15)]),
        "gas_budget": st.sampled_from([0, OP_COST, OP_COST + OP_COST // 2, 10**18]),
        "after": st.one_of(*[st.integers(-7_200, -1)] * 4, st.integers(0, 40)),
        "length": st.one_of(*[st.integers(100_000, 300_000)] * 4, st.integers(1, 200)),
        "user_op": st.sampled_from([False, False, False, True]),
        # rate limits (RateLimits.sol): (min_interval, uses_per_period, use_period) in seconds / uses; the
        # plan's gaps (1-30 s, or an hour and more) fall on both sides of a 20 s interval and a 60 s window
        "rate": st.sampled_from([(0, 0, 0), (0, 0, 0), (20, 0, 0), (0, 1, 60), (0, 2, 3_600), (15, 1, 60)]),
    }
)


def _build_policy(spec, key, addresses):
    perms = []
    for index in spec["perms"]:
        where, signature, mode, *rules = PERMISSIONS[index]
        selector = selector_of(signature) if signature else b"\x00\x00\x00\x00"
        perms.append(Permission(addresses[where], selector, mode, rules[0] if rules else ()))
    caps = ()
    if spec["token_cap"] is not None:
        cap, (period, per_period) = spec["token_cap"]
        caps = (TokenCap(addresses["token"], cap, period, per_period),)
    return perms, caps


#: what a call built for permission ``PERMISSIONS[i]`` may be (a wildcard offers several functions)
PERMITTED_KINDS = {
    0: ["ping"], 1: ["other"], 2: ["ping", "other", "receive"], 3: ["receive"], 4: ["transfer"], 5: ["approve"],
    6: ["transfer", "approve", "increaseAllowance", "burn"], 7: ["native_recipient"], 8: ["native_recipient"],
    9: ["transfer", "transfer_stranger", "transfer_other"], 10: ["ping", "ping_wide"],
    11: ["transfer", "transfer_other"],
}
TOKEN_KINDS = {"transfer", "transfer_stranger", "transfer_other", "approve", "increaseAllowance", "burn"}
OTHER = "0x000000000000000000000000000000000000dEaD"


def _resolve(spec, policy_spec):
    """(kind, value, amount) of a call spec: a "permitted" spec picks among the granted permissions."""
    kind, value, amount, pick = spec
    if kind == "permitted":
        granted = policy_spec["perms"]
        options = PERMITTED_KINDS[granted[pick % len(granted)]]
        kind = options[(pick // len(granted)) % len(options)]
    if kind in TOKEN_KINDS:
        value = 0  # token functions are not payable: a value would make the token itself revert
        if kind != "approve":
            amount = min(amount, 10**11)  # the account holds 1e12: the token never reverts for balance
    return kind, value, amount


def _call(kind, value, arg, addresses, target, token):
    if kind == "ping":
        return Call(addresses["target"], value, target.encode_abi("ping", [3]))
    if kind == "other":
        return Call(addresses["target"], value, target.encode_abi("other", []))
    if kind == "receive":
        return Call(addresses["target"], value, b"")
    if kind == "native_recipient":
        return Call(RECIPIENT, value, b"")
    if kind == "ping_wide":  # 1..5 around the ranged ping's bounds (2..4)
        return Call(addresses["target"], value, target.encode_abi("ping", [1 + arg % 5]))
    if kind == "transfer_stranger":
        return Call(addresses["token"], 0, token.encode_abi("transfer", [STRANGER, arg]))
    if kind == "transfer_other":
        return Call(addresses["token"], 0, token.encode_abi("transfer", [OTHER, arg]))
    if kind in ("transfer", "approve", "increaseAllowance"):
        return Call(addresses["token"], 0, token.encode_abi(kind, [RECIPIENT, arg]))
    if kind == "burn":
        return Call(addresses["token"], 0, token.encode_abi("burn", [arg]))
    if kind == "multicall":
        return Call(addresses["target"], 0, target.encode_abi("multicall", [[]]))
    if kind == "forbidden_self":
        return Call(addresses["account"], 0, b"")
    if kind == "forbidden_ep":
        return Call(ENTRY_POINT_V08, 0, selector_of("depositTo(address)") + encode(["address"], [RECIPIENT]))
    if kind == "forbidden_zero":
        return Call(ZERO, 0, b"")
    if kind == "stranger":
        return Call(STRANGER, 0, target.encode_abi("ping", [1]))
    if kind == "short":
        return Call(addresses["target"], 0, b"\x01" * arg)
    raise AssertionError(kind)


def _replay(w3, tx):
    """The decoded revert of ``tx`` replayed on the latest block (where the failed transaction was mined)."""
    try:
        w3.eth.call(tx, "latest")
    except REVERT_EXCEPTIONS as exc:
        return decode_revert(revert_data_of(exc) or b"")
    raise AssertionError("the mined transaction failed but its replay succeeds")


def _run_direct(chain, agent, key, calls):
    data = agent.call_data(calls)
    receipt = chain.send({"to": agent.account, "data": data, "gas": TX_GAS}, key)
    if receipt["status"] == 1:
        return None, False
    return _replay(chain.w3, {"from": key.address, "to": agent.account, "data": data, "gas": TX_GAS}), False


def _run_user_op(chain, agent, bundler, calls, timestamp):
    op = agent.build_user_op(
        calls, call_gas_limit=CALL_GAS, verification_gas_limit=VERIFICATION_GAS,
        pre_verification_gas=PRE_VERIFICATION_GAS,
    ).replace(max_fee_per_gas=MAX_FEE, max_priority_fee_per_gas=TIP)
    assert op.max_gas_cost() == OP_COST
    op = agent.sign_user_op(op)
    chain.set_next_block_timestamp(timestamp)
    handle_ops = agent.entry_point.contract.encode_abi("handleOps", [[op.to_abi_tuple()], bundler.address])
    receipt = chain.send({"to": ENTRY_POINT_V08, "data": handle_ops, "gas": TX_GAS}, bundler)
    if receipt["status"] != 1:  # validation failed: the whole bundle reverted
        error = _replay(chain.w3, {"from": bundler.address, "to": ENTRY_POINT_V08, "data": handle_ops, "gas": TX_GAS})
        assert isinstance(error, FailedOp), error
        if isinstance(error, FailedOpWithRevert):
            return error.inner, False
        return error, False
    (result,) = agent.entry_point._results(receipt)
    if result.success:
        return None, True
    return result.revert, True


def _same_error(predicted: SmartKeysError, actual: SmartKeysError) -> None:
    if isinstance(predicted, SessionWindowError):
        assert isinstance(actual, UserOperationError) and actual.code == "AA22", actual
        return
    assert type(predicted) is type(actual), (predicted, actual)
    assert predicted.values == actual.values, (predicted, actual)


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=policies, plan=uses)
def test_preflight_allows_and_refuses_exactly_like_the_contract(
    chain, owner, bundler, token, deploy, session_key, fund, spec, plan
):
    _agree(chain, owner, bundler, token, deploy, session_key, fund, spec, plan)


#: Rate limits need uses that succeed first: a session whose calls are always in scope (a ping, a ranged
#: ping), without caps, on either path, with random rate limits and gaps around their boundaries.
rate_policies = st.fixed_dictionaries({
    "perms": st.sampled_from([[0], [10], [0, 1]]), "token_cap": st.none(), "max_uses": st.sampled_from([0, 0, 3]),
    "native_per_call": st.just(0), "native_total": st.just(0), "native_period": st.just((0, 0)),
    "gas_budget": st.just(10**18), "after": st.just(-10), "length": st.just(300_000),
    "user_op": st.booleans(),
    "rate": st.sampled_from([(20, 0, 0), (0, 1, 60), (0, 2, 60), (15, 2, 3_600), (1, 3, 60)]),
})
rate_uses = st.lists(
    st.tuples(st.just(""), st.sampled_from([1, 2, 14, 15, 16, 19, 20, 21, 59, 60, 61, 3_600]),
              st.lists(st.tuples(st.just("permitted"), st.just(0), st.just(0), st.integers(0, 15)),
                       min_size=1, max_size=2)),
    min_size=2, max_size=5,
)


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=rate_policies, plan=rate_uses)
def test_preflight_agrees_with_the_contract_on_rate_limits(
    chain, owner, bundler, token, deploy, session_key, fund, spec, plan
):
    _agree(chain, owner, bundler, token, deploy, session_key, fund, spec, plan)


def _agree(chain, owner, bundler, token, deploy, session_key, fund, spec, plan):
    target = deploy("test/MockTarget")
    addresses = {"target": target.address, "token": token.address, "recipient": RECIPIENT,
                 "account": owner.address}
    if not chain.w3.eth.get_balance(session_key.address):
        fund(session_key.address)
    base = chain.snapshot()
    try:
        perms, caps = _build_policy(spec, session_key.address, addresses)
        grant_time = chain.time() + 5
        valid_after = max(0, grant_time + spec["after"])
        valid_until = max(valid_after + 1, grant_time) + spec["length"]
        native_period, native_per_period = spec["native_period"]
        min_interval, uses_per_period, use_period = spec["rate"]
        policy = SessionPolicy(
            key=session_key.address, valid_after=valid_after, valid_until=valid_until,
            permissions=tuple(perms), token_caps=caps, max_uses=spec["max_uses"],
            native_per_call=spec["native_per_call"], native_total=spec["native_total"],
            native_period=native_period, native_per_period=native_per_period, gas_budget=spec["gas_budget"],
            min_interval=min_interval, uses_per_period=uses_per_period, use_period=use_period,
            # without a cap the token is reachable only by the owner's explicit choice (default deny)
            allow_uncapped_assets=not caps,
        )
        chain.set_next_block_timestamp(grant_time)
        owner.grant(policy)
        agent = SessionAgent(chain.w3, owner.address, session_key, policy)
        via_user_op = spec["user_op"]

        for before_use, delta, call_kinds in plan:
            if before_use == "revoke":
                try:
                    owner.revoke(policy.session_id)
                except SmartKeysError:
                    pass  # already revoked: the contract refuses a second revoke
            elif before_use == "revoke_all":
                owner.revoke_all()
            call_kinds = [_resolve(c, spec) for c in call_kinds]
            calls = [_call(kind, value, arg, addresses, target, token) for kind, value, arg in call_kinds]
            burns = sum(arg for kind, _, arg in call_kinds if kind == "burn")
            state = read_session_state(chain.w3, owner.address, policy)
            now = chain.time() + delta

            try:
                charges = preflight(
                    policy, state, calls, now=now, via_user_op=via_user_op,
                    max_gas_cost=OP_COST if via_user_op else None,
                    expected_outflows={token.address: burns}, sender=None if via_user_op else session_key.address,
                )
                predicted = None
            except SmartKeysError as exc:
                charges, predicted = None, exc

            if via_user_op:
                actual, validated = _run_user_op(chain, agent, bundler, calls, now)
            else:
                chain.set_next_block_timestamp(now)
                actual, validated = _run_direct(chain, agent, session_key, calls)
            assert chain.time() == now

            after = read_session_state(chain.w3, owner.address, policy)
            event(f"{'user op' if via_user_op else 'direct'}: {type(predicted).__name__ if predicted else 'allowed'}")
            if predicted is None:
                assert actual is None, f"preflight allowed {call_kinds} but the chain refused: {actual!r}"
                assert after == state.after(policy, charges, now=now)
            else:
                assert actual is not None, f"preflight refused {call_kinds} with {predicted!r}, the chain allowed it"
                _same_error(predicted, actual)
                expected_after = state
                if validated:  # the user op's gas was charged at validation; execution was refused
                    expected_after = dataclasses.replace(state, gas_spent=state.gas_spent + OP_COST)
                assert after == expected_after
    finally:
        chain.revert(base)


def test_transfer_over_cap_is_refused_offline_with_the_contracts_error(chain, owner, token, session_key, fund, grant):
    """A deterministic anchor for the property: one refusal, compared field by field."""
    fund(session_key.address)
    agent = grant(session_key, permissions=(Permission(token.address, selector_of("transfer(address,uint256)")),),
                  token_caps=(TokenCap(token.address, 10**6),))
    calls = [Call(token.address, 0, token.encode_abi("transfer", [RECIPIENT, 10**6 + 1]))]
    state = read_session_state(chain.w3, owner.address, agent.policy)
    now = chain.time() + 3
    with pytest.raises(SmartKeysError) as offline:
        preflight(agent.policy, state, calls, now=now, via_user_op=False)
    chain.set_next_block_timestamp(now)
    actual, _ = _run_direct(chain, agent, session_key, calls)
    assert offline.value.name == "TokenSpendCapExceeded"
    _same_error(offline.value, actual)
    assert actual.values == (token.address, 0, 10**6 + 1, 10**6)
