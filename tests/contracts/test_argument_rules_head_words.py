"""A policy file's ``where`` after a static array rules the head word the contract reads (review 12, finding 1):
preflight and the chain agree on both session paths, allowing the listed recipient whatever the array holds and
refusing the review's swap (treasury in ``xs[1]``, attacker in ``to``) with the same ``ArgumentRuleViolated``
values, nothing changed."""

from __future__ import annotations

import pytest
from eth_abi import encode
from eth_utils import to_checksum_address
from test_session_budgets import path, run  # noqa: F401  (fixtures)

from smartkeys.account import Call, SessionAgent
from smartkeys.errors import get_error_class
from smartkeys.policy import parse_policy
from smartkeys.policy_codec import selector_of
from smartkeys.preflight import preflight

SHOP = to_checksum_address("0x000000000000000000000000000000000000c0de")  # no code: an allowed call succeeds
TREASURY = to_checksum_address("0x000000000000000000000000000000000000a11c")
ATTACKER = to_checksum_address("0x000000000000000000000000000000000000bad0")
CANONICAL = "pay(uint256[2],address,uint256)"


def _pay(xs, to, amount) -> Call:
    return Call(SHOP, 0, selector_of(CANONICAL) + encode(["uint256[2]", "address", "uint256"], [xs, to, amount]))


@pytest.fixture
def agent(chain, owner, session_key, fund):
    fund(session_key.address)
    policy = parse_policy({
        "key": session_key.address, "valid_for": "1h",
        "contracts": {"shop": SHOP}, "address_book": {"treasury": TREASURY},
        "allow": [{"contract": "shop", "functions": ["pay(uint256[2] xs, address to, uint256 amount)"],
                   "where": {"to": ["treasury"], "amount": "<= 100"}}],
        "limits": {"gas_budget": "1 ether"},
    }).compile(now=chain.time())
    owner.grant(policy)
    return SessionAgent(chain.w3, owner.address, session_key, policy)


def _predicted(agent, call, via_user_op):
    return preflight(agent.policy, agent.session_state(), [call], now=agent.w3.eth.get_block("latest")["timestamp"] + 1,
                     via_user_op=via_user_op, max_gas_cost=10**15 if via_user_op else None)


@pytest.mark.parametrize("call, index, word", [
    (_pay([0, int(TREASURY, 16)], ATTACKER, 1), 2, int(ATTACKER, 16)),  # the review's swap
    (_pay([int(TREASURY, 16), 0], ATTACKER, 1), 2, int(ATTACKER, 16)),
    (_pay([0, 0], TREASURY, 101), 3, 101),
])
def test_preflight_and_chain_refuse_the_same_word_after_a_static_array(run, agent, path, call, index, word):
    with pytest.raises(get_error_class("ArgumentRuleViolated")) as predicted:
        _predicted(agent, call, path == "user_op")
    e = run.refused(agent, [call], "ArgumentRuleViolated")
    assert (e.argIndex, int.from_bytes(bytes(e.value), "big")) == (index, word)
    assert (predicted.value.argIndex, bytes(predicted.value.value)) == (e.argIndex, bytes(e.value))
    assert (e.target, bytes(e.selector_)) == (SHOP, selector_of(CANONICAL))


def test_preflight_and_chain_allow_the_listed_recipient_whatever_the_array_holds(run, agent, path):
    call = _pay([int(ATTACKER, 16), 2**256 - 1], TREASURY, 100)
    _predicted(agent, call, path == "user_op")
    receipt = run(agent, [call])
    assert receipt["status"] == 1
