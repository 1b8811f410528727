"""A rule's index is the ABI head word the contract reads (``ArgumentRules.sol``: ``calldata[4 + 32 index :
36 + 32 index]``), not the parameter's place in the signature (review 12, finding 1). The slot helper
(``signature_parameters`` / ``parameters_of``) is checked against eth-abi's own encoding; the policy file's
``where``, ``decompile``, the refusal/view texts and the tool definitions all go through it.

Tool schemas never advertise more than the chain allows (finding 4): a permission's rules (AND) on one argument
intersect, and alternatives (OR) leave the schema open and say so."""

from __future__ import annotations

import pytest
from eth_abi import encode
from eth_abi.grammar import TupleType, parse

from smartkeys.account import Call
from smartkeys.argument_rules import ArgumentRule, RuleOp, parameter_at, parameters_of, signature_parameters
from smartkeys.errors import InvalidInputError, get_error_class
from smartkeys.policy import decompile, parse_policy
from smartkeys.policy_codec import Permission, SessionPolicy, TokenCap, selector_of
from smartkeys.policy_view import argument_name, rules_view
from smartkeys.preflight import SessionState, preflight
from smartkeys.tools import call_from_tool, tool_definitions

KEY = "0x1111111111111111111111111111111111111111"
USDC = "0x2222222222222222222222222222222222222222"
SHOP = "0x000000000000000000000000000000000000bEEF"
TREASURY = "0x3333333333333333333333333333333333333333"
ATTACKER = "0x5555555555555555555555555555555555555555"
ACCOUNT = "0x6666666666666666666666666666666666666666"
PAY = "pay(uint256[2] xs, address to, uint256 amount)"
NOW = 1_800_000_000


def _zero(t):
    """A zero value of parsed eth-abi type ``t`` (empty for dynamic arrays, bytes and strings)."""
    if t.is_array:
        dims = t.arrlist[-1]
        return [_zero(t.item_type)] * dims[0] if dims else []
    if isinstance(t, TupleType):
        return tuple(_zero(c) for c in t.components)
    if t.base == "address":
        return "0x" + "00" * 20
    if t.base == "bool":
        return False
    if t.base == "string":
        return ""
    if t.base == "bytes":
        return b"\0" * int(t.sub) if t.sub else b""
    return 0


@pytest.mark.parametrize("types, slots", [
    (["address", "uint256"], [(0, 1), (1, 1)]),
    (["uint256[2]", "address", "uint256"], [(0, 2), (2, 1), (3, 1)]),          # static array
    (["uint8[2][3]", "bool"], [(0, 6), (6, 1)]),                               # nested static array: 3 x 2
    (["(uint256,address)", "bytes4"], [(0, 2), (2, 1)]),                       # static tuple
    (["(uint256,(address,bool)[2])[2]", "int24"], [(0, 10), (10, 1)]),         # tuples in arrays in tuples
    (["bytes", "string", "uint256[]", "address"], [(0, 1), (1, 1), (2, 1), (3, 1)]),  # dynamic: one offset
    (["uint256[2]", "(uint256,bytes)", "uint256[2][]", "address"], [(0, 2), (2, 1), (3, 1), (4, 1)]),
    (["uint", "int"], [(0, 1), (1, 1)]),
])
def test_slot_helper_gives_each_parameter_the_head_words_eth_abi_encodes(types, slots):
    params = parameters_of(types)
    assert [(p.slot, p.slots) for p in params] == slots
    # eth-abi's own encoding: the head is the sum of the slots, and the word at a dynamic parameter's slot is
    # its offset; with every argument zero, the first offset points just past the head.
    data = encode([p.abi_type for p in params], [_zero(parse(p.abi_type)) for p in params])
    head = sum(p.slots for p in params)
    dynamic = [p for p in params if parse(p.abi_type).is_dynamic]
    if not dynamic:
        assert len(data) == 32 * head
    for p in dynamic[:1]:
        assert int.from_bytes(data[32 * p.slot : 32 * p.slot + 32], "big") == 32 * head


def test_signatures_with_names_arrays_tuples_and_locations_parse_to_the_canonical_selector():
    canonical, params = signature_parameters("pay((uint256, address)[2] memory orders, bytes calldata memo, uint x)")
    assert canonical == "pay((uint256,address)[2],bytes,uint256)"
    assert [(p.name, p.slot, p.ruleable) for p in params] == [("orders", 0, False), ("memo", 4, False), ("x", 5, True)]
    assert signature_parameters("transfer(address,uint256)")[1][0].name == "to"  # ERC-20 names when none written
    assert parameter_at(params, 3).name == "orders" and parameter_at(params, 6) is None
    for bad in ("pay(uint256 a b)", "pay(tuple x)", "pay(uint7 x)", "pay(address"):
        with pytest.raises(InvalidInputError):
            signature_parameters(bad)


def _pay_policy(where: dict, functions=(PAY,)):
    return parse_policy({
        "key": KEY, "valid_for": "1h", "contracts": {"shop": SHOP}, "address_book": {"treasury": TREASURY},
        "allow": [{"contract": "shop", "functions": list(functions), "where": where}],
        "limits": {"gas_budget": "0.05 ether"},
    })


def _pay(xs, to, amount) -> Call:
    return Call(SHOP, 0, selector_of("pay(uint256[2],address,uint256)")
                + encode(["uint256[2]", "address", "uint256"], [xs, to, amount]))


@pytest.mark.parametrize("where", [{"to": ["treasury"], "amount": "<= 100"}, {"arg1": ["treasury"], "arg2": "<= 100"}])
def test_where_after_a_static_array_rules_the_right_word_and_preflight_refuses_the_swap(where):
    functions = (PAY,) if "to" in where else ("pay(uint256[2],address,uint256)",)
    policy = _pay_policy(where, functions).compile(now=NOW)
    (perm,) = policy.permissions
    assert perm.selector == selector_of("pay(uint256[2],address,uint256)")
    assert [(r.index, r.op) for r in perm.rules] == [(2, RuleOp.ONE_OF), (3, RuleOp.LE)]
    state = SessionState.fresh(policy, ACCOUNT, now=NOW)
    preflight(policy, state, [_pay([0, int(ATTACKER, 16)], TREASURY, 100)], now=NOW + 1, via_user_op=False)
    with pytest.raises(get_error_class("ArgumentRuleViolated")) as info:  # the review's attack: treasury in xs[1]
        preflight(policy, state, [_pay([0, int(TREASURY, 16)], ATTACKER, 1)], now=NOW + 1, via_user_op=False)
    assert (info.value.argIndex, int.from_bytes(info.value.value, "big")) == (2, int(ATTACKER, 16))
    with pytest.raises(get_error_class("ArgumentRuleViolated")) as info:
        preflight(policy, state, [_pay([0, 0], TREASURY, 101)], now=NOW + 1, via_user_op=False)
    assert info.value.argIndex == 3


@pytest.mark.parametrize("where, fix", [
    ({"xs": "<= 5"}, "uint256[2]"),
    ({"arg0": "<= 5"}, "uint256[2]"),
])
def test_a_where_on_an_array_is_refused_with_the_field_and_the_fix(where, fix):
    functions = (PAY,) if "xs" in where else ("pay(uint256[2],address,uint256)",)
    with pytest.raises(InvalidInputError) as info:
        _pay_policy(where, functions).compile(now=NOW)
    assert info.value.field == f"allow[0].where.{next(iter(where))}"
    assert fix in str(info.value) and "rule another argument" in str(info.value)


def test_where_on_tuple_and_dynamic_arguments_is_refused():
    for sig, name in (("f((address,uint256) o, address to)", "o"), ("f(bytes b, address to)", "b"),
                      ("f(uint256[] xs, address to)", "xs")):
        with pytest.raises(InvalidInputError) as info:
            _pay_policy({name: "0x00"}, (sig,)).compile(now=NOW)
        assert info.value.field == f"allow[0].where.{name}" and "rule another argument" in str(info.value)


def test_views_decompile_and_refusal_names_map_the_head_word_back_to_the_argument():
    policy = _pay_policy({"to": ["treasury"], "amount": "<= 100"}).compile(now=NOW)
    sel = selector_of("pay(uint256[2],address,uint256)")
    sigs = {sel: "pay(uint256[2],address,uint256)"}
    assert [argument_name(sel, i, sigs) for i in (0, 1, 2, 3, 4)] == ["arg0", "arg0 word 1", "arg1", "arg2", "word4"]
    (entry,) = rules_view(policy, names={TREASURY: "treasury"}, signatures=sigs)
    assert [r["argument"] for r in entry["rules"]] == ["arg1", "arg2"]
    assert "arg1 one of [treasury]" in entry["text"]
    model = decompile(policy, signatures=["pay(uint256[2],address,uint256)"], address_book={"treasury": TREASURY})
    assert model.allow[0].where == {"arg1": ["treasury"], "arg2": "<= 100"}
    assert model.compile(now=NOW).permissions == policy.permissions  # round trip lands on the same words


def test_tool_for_a_function_with_a_static_array_puts_the_enum_on_the_recipient():
    policy = _pay_policy({"to": ["treasury"], "amount": "<= 100"}).compile(now=NOW)
    abi = [{"type": "function", "name": "pay", "stateMutability": "nonpayable",
            "inputs": [{"name": "xs", "type": "uint256[2]"}, {"name": "to", "type": "address"},
                       {"name": "amount", "type": "uint256"}]}]
    (tool,) = tool_definitions(policy, names={TREASURY: "treasury", SHOP: "shop"}, abis={SHOP: abi})
    props = tool["function"]["parameters"]["properties"]
    assert props["to"]["enum"] == ["treasury"] and props["amount"]["maximum"] == 100
    assert "enum" not in props["xs"]["items"] and "maximum" not in props["xs"]
    call = call_from_tool(tool["function"]["name"], {"xs": [0, 7], "to": "treasury", "amount": 100}, policy,
                          names={TREASURY: "treasury", SHOP: "shop"}, abis={SHOP: abi})
    assert call == _pay([0, 7], TREASURY, 100)


# --------------------------------------------------------------------------- finding 4: schema = intersection


def _tools(*perms):
    policy = SessionPolicy(key=KEY, valid_after=0, valid_until=2_000_000_000, gas_budget=10**17,
                           permissions=perms, token_caps=(TokenCap(USDC, 10**9),))
    return tool_definitions(policy, names={SHOP: "shop", TREASURY: "treasury"}, tokens={USDC: ("USDC", 6)})


def _transfer(*rules):
    return Permission(USDC, "transfer(address,uint256)", rules=rules)


def test_bounds_intersect_and_a_not_equal_on_a_bound_moves_it_inwards():
    (tool,) = _tools(_transfer(ArgumentRule(1, RuleOp.GE, "uint256", (10,)), ArgumentRule(1, RuleOp.RANGE, "uint256", (5, 80)),
                               ArgumentRule(1, RuleOp.LE, "uint256", (60,)), ArgumentRule(1, RuleOp.NE, "uint256", (60,))))
    amount = tool["function"]["parameters"]["properties"]["amount"]
    assert (amount["minimum"], amount["maximum"]) == (10, 59)
    assert "at least 0.00001 USDC and at most 0.000059 USDC" in amount["description"]


def test_two_recipient_lists_intersect_and_an_empty_intersection_offers_no_tool():
    (tool,) = _tools(_transfer(ArgumentRule(0, RuleOp.ONE_OF, "address", (SHOP, TREASURY, ATTACKER)),
                               ArgumentRule(0, RuleOp.ONE_OF, "address", (TREASURY, SHOP))))
    assert tool["function"]["parameters"]["properties"]["to"]["enum"] == ["shop", "treasury"]
    assert _tools(_transfer(ArgumentRule(0, RuleOp.ONE_OF, "address", (SHOP,)),
                            ArgumentRule(0, RuleOp.NE, "address", (SHOP,)))) == []
    assert _tools(_transfer(ArgumentRule(1, RuleOp.GE, "uint256", (10,)), ArgumentRule(1, RuleOp.LE, "uint256", (9,)))) == []
    assert _tools(_transfer(ArgumentRule(1, RuleOp.LE, "uint256", (0,)), ArgumentRule(1, RuleOp.NE, "uint256", (0,)))) == []


def test_alternative_permissions_leave_the_schema_open_and_say_so():
    (tool,) = _tools(_transfer(ArgumentRule(0, RuleOp.EQ, "address", (SHOP,))),
                     _transfer(ArgumentRule(0, RuleOp.EQ, "address", (TREASURY,))))
    fn = tool["function"]
    assert "enum" not in fn["parameters"]["properties"]["to"]
    assert "to = shop OR when to = treasury" in fn["description"] and "not narrowed" in fn["description"]
