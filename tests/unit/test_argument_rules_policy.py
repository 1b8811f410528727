"""Argument rules and rate limits offline: codec round trip, preflight at each boundary, policy-file syntax
(``where``, ``address_book``, ``every``, ``uses_per_day``) with errors that name the field, and tool schemas
(recipient list -> enum of names, amount bound -> minimum/maximum, next allowed use in the description)."""

from __future__ import annotations

import pytest
from eth_abi import encode

from smartkeys.account import Call
from smartkeys.argument_rules import ArgumentRule, RuleOp
from smartkeys.errors import InvalidInputError, get_error_class
from smartkeys.policy import parse_policy
from smartkeys.policy_codec import Permission, SessionPolicy, TokenCap, selector_of
from smartkeys.preflight import Ledger, SessionState, preflight
from smartkeys.tools import call_from_tool, tool_definitions

KEY = "0x1111111111111111111111111111111111111111"
USDC = "0x2222222222222222222222222222222222222222"
TREASURY = "0x3333333333333333333333333333333333333333"
OTHER = "0x4444444444444444444444444444444444444444"
ATTACKER = "0x5555555555555555555555555555555555555555"
ACCOUNT = "0x6666666666666666666666666666666666666666"
TRANSFER = selector_of("transfer(address,uint256)")
NOW = 1_800_000_000


def transfer(to: str, amount: int) -> Call:
    return Call(USDC, 0, TRANSFER + encode(["address", "uint256"], [to, amount]))


def ruled_policy(**fields) -> SessionPolicy:
    rules = (ArgumentRule(0, RuleOp.ONE_OF, "address", (TREASURY, OTHER)), ArgumentRule(1, RuleOp.LE, "uint256", (50,)))
    return SessionPolicy(key=KEY, valid_after=0, valid_until=2 * NOW, permissions=(Permission(USDC, TRANSFER, rules=rules),),
                         token_caps=(TokenCap(USDC, 1_000),), **fields)


def test_codec_round_trip_keeps_rules_and_rate_limits_and_changes_the_session_id():
    plain = SessionPolicy(key=KEY, valid_after=0, valid_until=2 * NOW, permissions=(Permission(USDC, TRANSFER),),
                          token_caps=(TokenCap(USDC, 1_000),))
    ruled = ruled_policy(min_interval=600, uses_per_period=3, use_period=86_400)
    assert SessionPolicy.decode(ruled.encode()) == ruled
    assert ruled.session_id != plain.session_id
    assert ruled.encode()[0] == 3


@pytest.mark.parametrize("rule, ok, bad", [
    (ArgumentRule(0, RuleOp.RANGE, "int24", (-100, -10)), -10, -9),
    (ArgumentRule(0, RuleOp.GE, "int24", (-5,)), -5, -6),
    (ArgumentRule(0, RuleOp.NE, "int24", (7,)), 6, 7),
])
def test_signed_rules_hold_at_the_boundary_and_fail_one_past(rule, ok, bad):
    word = lambda v: bytes(4) + encode(["int24"], [v])  # noqa: E731
    assert rule.holds(word(ok)) and not rule.holds(word(bad))


def test_a_badly_sign_extended_int_fails_every_rule():
    rule = ArgumentRule(0, RuleOp.NE, "int8", (1,))
    assert not rule.holds(bytes(4) + (0x80).to_bytes(32, "big"))  # 128 is not an int8 word


def test_preflight_allows_the_boundary_and_refuses_one_past_naming_argument_rule_and_value():
    policy = ruled_policy()
    state = SessionState.fresh(policy, ACCOUNT, now=NOW)
    assert preflight(policy, state, [transfer(OTHER, 50)], now=NOW + 1, via_user_op=False).tokens == {USDC: 50}
    with pytest.raises(get_error_class("ArgumentRuleViolated")) as info:
        preflight(policy, state, [transfer(OTHER, 51)], now=NOW + 1, via_user_op=False)
    assert (info.value.argIndex, info.value.op, int.from_bytes(info.value.value, "big")) == (1, RuleOp.LE, 51)
    with pytest.raises(get_error_class("ArgumentRuleViolated")) as info:
        preflight(policy, state, [transfer(ATTACKER, 1)], now=NOW + 1, via_user_op=False)
    assert (info.value.argIndex, info.value.op) == (0, RuleOp.ONE_OF)


def test_preflight_rate_limits_at_their_boundaries():
    policy = ruled_policy(min_interval=600, uses_per_period=2, use_period=86_400)
    day = NOW // 86_400 * 86_400 + 86_400
    state = SessionState.fresh(policy, ACCOUNT, now=day - 2_000)
    charges = preflight(policy, state, [transfer(OTHER, 1)], now=day - 1_300, via_user_op=False)
    state = state.after(policy, charges, now=day - 1_300)
    assert state.rate_ledger == Ledger(day - 1_300, 1, day // 86_400 - 1)
    with pytest.raises(get_error_class("UseTooSoon")):
        preflight(policy, state, [transfer(OTHER, 1)], now=day - 701, via_user_op=False)
    state = state.after(policy, preflight(policy, state, [transfer(OTHER, 1)], now=day - 700, via_user_op=False),
                        now=day - 700)
    with pytest.raises(get_error_class("UsesPerPeriodReached")) as info:
        preflight(policy, state, [transfer(OTHER, 1)], now=day - 1, via_user_op=False)
    assert (info.value.limit, info.value.used) == (2, 2)
    preflight(policy, state, [transfer(OTHER, 1)], now=day, via_user_op=False)  # a new UTC day


POLICY = {
    "key": KEY, "valid_for": "24h",
    "address_book": {"treasury": TREASURY},
    "tokens": {"USDC": {"address": USDC, "decimals": 6}},
    "allow": [{"contract": "USDC", "functions": ["transfer(address,uint256)"],
               "where": {"to": ["treasury", OTHER], "amount": "<= 50 USDC"}}],
    "limits": {"every": "10m", "uses_per_day": 20, "gas_budget": "0.05 ether", "tokens": {"USDC": {"total": "100 USDC"}}},
}


def test_policy_file_where_and_rate_limits_compile_to_rules_in_token_units():
    policy = parse_policy(POLICY).compile(now=NOW)
    (perm,) = policy.permissions
    assert perm.rules == (ArgumentRule(0, RuleOp.ONE_OF, "address", (TREASURY, OTHER)),
                          ArgumentRule(1, RuleOp.LE, "uint256", (50 * 10**6,)))
    assert (policy.min_interval, policy.uses_per_period, policy.use_period) == (600, 20, 86_400)
    text = parse_policy(POLICY).describe()
    assert "to one of [treasury" in text and "at most one use every 10m" in text


@pytest.mark.parametrize("where, field, fix", [
    ({"tox": ["treasury"]}, "allow[0].where.tox", "name the argument"),
    ({"to": ["nobody"]}, "allow[0].where.to[0]", "address_book"),
    ({"amount": "<= 50 DAI"}, "allow[0].where.amount", "50 USDC"),
    ({"amount": "<= -1"}, "allow[0].where.amount", "value the type can hold"),
    ({"to": [f"0x{i:040x}" for i in range(1, 34)]}, "allow[0].where.to", "shorten"),
])
def test_policy_file_where_errors_name_the_field_value_and_fix(where, field, fix):
    data = dict(POLICY, allow=[dict(POLICY["allow"][0], where=where)])
    with pytest.raises(InvalidInputError) as info:
        parse_policy(data).compile(now=NOW)
    assert info.value.field == field and fix in str(info.value)


def test_tools_turn_the_recipient_list_into_an_enum_of_names_and_the_bound_into_maximum():
    policy = parse_policy(POLICY).compile(now=NOW)
    names, tokens = {TREASURY: "treasury"}, {USDC: ("USDC", 6)}
    state = SessionState.fresh(policy, ACCOUNT, now=NOW)
    state = state.after(policy, preflight(policy, state, [transfer(OTHER, 1)], now=NOW + 5, via_user_op=False),
                        now=NOW + 5)
    (tool,) = tool_definitions(policy, names=names, tokens=tokens, state=state, now=NOW + 6, format="anthropic")
    props = tool["input_schema"]["properties"]
    assert props["to"]["enum"] == ["treasury", OTHER]
    assert props["amount"]["maximum"] == 50 * 10**6 and "at most 50 USDC" in props["amount"]["description"]
    assert "next use is allowed from" in tool["description"] and f"unix {NOW + 5 + 600}" in tool["description"]
    call = call_from_tool(tool["name"], {"to": "treasury", "amount": 7}, policy, names=names, tokens=tokens)
    assert call == transfer(TREASURY, 7)
    with pytest.raises(InvalidInputError, match="arguments.to"):
        call_from_tool(tool["name"], {"to": ATTACKER, "amount": 7}, policy, names=names, tokens=tokens)
