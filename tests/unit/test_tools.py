"""``smartkeys.tools``: JSON-schema tool definitions from a policy, and the model's tool call back to a Call."""

from __future__ import annotations

import json

import pytest
from eth_abi import decode

from smartkeys import artifacts
from smartkeys.account import Call
from smartkeys.errors import InvalidInputError
from smartkeys.policy_codec import Permission, PermissionMode, SessionPolicy, TokenCap, selector_of
from smartkeys.preflight import Ledger, SessionState
from smartkeys.tools import call_from_tool, tool_definitions

try:
    import jsonschema
except ImportError:  # pragma: no cover
    jsonschema = None

USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
TARGET = "0x3333333333333333333333333333333333333333"
RECIPIENT = "0x4444444444444444444444444444444444444444"
ROUTER = "0x5555555555555555555555555555555555555555"
ACCOUNT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
TRANSFER = selector_of("transfer(address,uint256)")
TARGET_ABI = artifacts.load("test/MockTarget")["abi"]
NAMES = {TARGET: "target", RECIPIENT: "alice"}
TOKENS = {USDC: ("USDC", 6)}


def policy(**fields) -> SessionPolicy:
    fields.setdefault("key", "0x" + "11" * 20)
    fields.setdefault("valid_after", 0)
    fields.setdefault("valid_until", 1_900_000_000)
    fields.setdefault("permissions", (
        Permission(USDC, TRANSFER),
        Permission(TARGET, mode=PermissionMode.ANY_SELECTOR),
        Permission(RECIPIENT, mode=PermissionMode.EMPTY_CALLDATA),
        Permission(ROUTER, mode=PermissionMode.ANY_SELECTOR),
    ))
    fields.setdefault("token_caps", (TokenCap(USDC, 1_000 * 10**6, 86_400, 250 * 10**6),))
    fields.setdefault("native_per_call", 10**17)
    fields.setdefault("native_total", 10**18)
    fields.setdefault("max_uses", 10)
    return SessionPolicy(**fields)


def tools(p=None, **kwargs):
    kwargs.setdefault("names", NAMES)
    kwargs.setdefault("abis", {TARGET: TARGET_ABI})
    kwargs.setdefault("tokens", TOKENS)
    return {t["function"]["name"]: t["function"] for t in tool_definitions(p or policy(), **kwargs)}


def test_one_tool_per_permitted_function_with_wildcards_expanded_and_multicall_left_out():
    names = set(tools())
    assert {"usdc_transfer", "target_ping", "target_other", "target_callback", "target_configure",
            "send_native_to_target", "send_native_to_alice", "call_contract_555555",
            "send_native_to_contract_555555"} == names
    assert not any("multicall" in n or "counter" in n or "fail" in n for n in names)  # view/pure left out too


def test_schemas_are_valid_json_schema_and_type_the_arguments():
    defs = tools()
    for tool in defs.values():
        schema = tool["parameters"]
        assert schema["type"] == "object" and schema["additionalProperties"] is False
        assert set(schema["required"]) <= set(schema["properties"])
        if jsonschema is not None:
            jsonschema.Draft202012Validator.check_schema(schema)
    transfer = defs["usdc_transfer"]["parameters"]
    assert transfer["required"] == ["to", "amount"]
    assert transfer["properties"]["to"]["pattern"] == "^0x[0-9a-fA-F]{40}$"
    assert transfer["properties"]["amount"]["minimum"] == 0
    assert "value" not in transfer["properties"]  # transfer is not payable
    assert defs["target_callback"]["parameters"]["properties"]["data"]["pattern"].startswith("^0x")
    assert "value" in defs["target_ping"]["parameters"]["properties"]  # ping is payable
    if jsonschema is not None:
        ok = {"to": RECIPIENT, "amount": "123"}
        jsonschema.validate(ok, transfer)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"to": "0x12", "amount": 1}, transfer)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"to": RECIPIENT, "amount": -1}, transfer)


def test_descriptions_state_the_limits_in_human_units():
    desc = tools()["usdc_transfer"]["description"]
    assert "transfer(address,uint256)" in desc
    assert "1000 USDC in total" in desc
    assert "250 USDC per UTC day (a calendar window, not a rolling one: resets at 00:00 UTC)" in desc
    assert "6 decimals" in desc
    assert "0.1 ETH per call" in desc and "1 ETH in total" in desc
    assert "At most 10 uses" in desc and "2030-03-17" in desc


def test_descriptions_with_a_state_say_what_is_left():
    p = policy()
    state = SessionState(ACCOUNT, True, uses=4, native_spent=4 * 10**17, tokens={USDC: Ledger(300 * 10**6, 0, 0)})
    desc = tools(p, state=state)["usdc_transfer"]["description"]
    assert "6 remaining" in desc and "700 USDC left" in desc and "0.6 ETH left" in desc


def test_anthropic_format_uses_input_schema():
    (first, *_) = tool_definitions(policy(), names=NAMES, tokens=TOKENS, format="anthropic")
    assert set(first) == {"name", "description", "input_schema"} and first["input_schema"]["type"] == "object"
    with pytest.raises(InvalidInputError):
        tool_definitions(policy(), format="gemini")


def test_no_native_tools_when_the_policy_allows_no_value():
    names = set(tools(policy(native_per_call=0, native_total=0)))
    assert not any(n.startswith("send_native") for n in names)


def test_call_from_tool_round_trips_an_erc20_transfer():
    call = call_from_tool("usdc_transfer", json.dumps({"to": RECIPIENT.lower(), "amount": "2500000"}), policy(),
                          names=NAMES, tokens=TOKENS)
    assert call.target == USDC and call.value == 0 and call.data[:4] == TRANSFER
    assert decode(["address", "uint256"], call.data[4:]) == (RECIPIENT.lower(), 2_500_000)


def test_call_from_tool_payable_function_and_native_transfer():
    call = call_from_tool("target_ping", {"x": 5, "value": 7}, policy(), names=NAMES, abis={TARGET: TARGET_ABI})
    assert call == Call(TARGET, 7, selector_of("ping(uint256)") + (5).to_bytes(32, "big"))
    native = call_from_tool("send_native_to_alice", {"value": "1000"}, policy(), names=NAMES)
    assert native == Call(RECIPIENT, 1000, b"")


def test_generic_call_tool_takes_calldata_but_refuses_multicall():
    ok = call_from_tool("call_contract_555555", {"data": "0xdeadbeef00"}, policy())
    assert ok.target == ROUTER and ok.data == bytes.fromhex("deadbeef00")
    with pytest.raises(InvalidInputError) as info:
        call_from_tool("call_contract_555555", {"data": "0xac9650d8"}, policy())
    assert info.value.field == "arguments.data"


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"to": "0x1234", "amount": 1}, "arguments.to"),
        ({"to": RECIPIENT, "amount": -1}, "arguments.amount"),
        ({"to": RECIPIENT, "amount": 2**256}, "arguments.amount"),
        ({"to": RECIPIENT, "amount": "1.5"}, "arguments.amount"),
        ({"to": RECIPIENT, "amount": True}, "arguments.amount"),
        ({"to": RECIPIENT}, "arguments.amount"),
        ({"to": RECIPIENT, "amount": 1, "memo": "hi"}, "arguments.memo"),
        ({"to": RECIPIENT, "amount": 1, "value": 5}, "arguments.value"),
    ],
)
def test_bad_arguments_are_refused_naming_the_argument(arguments, field):
    with pytest.raises(InvalidInputError) as info:
        call_from_tool("usdc_transfer", arguments, policy(), names=NAMES, tokens=TOKENS)
    assert info.value.field == field


def test_unknown_tool_suggests_close_names():
    with pytest.raises(InvalidInputError) as info:
        call_from_tool("usdc_transfr", {}, policy(), names=NAMES, tokens=TOKENS)
    assert "usdc_transfer" in str(info.value)


def test_exact_selector_without_abi_gets_a_raw_arguments_tool():
    sel = selector_of("swap(uint256)")
    p = policy(permissions=(Permission(ROUTER, sel),), token_caps=())
    (name,) = tools(p)
    assert name == "contract_555555_0x" + sel.hex()
    call = call_from_tool(name, {"args": "0x" + "00" * 31 + "09"}, p)
    assert call.data == sel + (9).to_bytes(32, "big")


@pytest.mark.parametrize(
    ("text", "problem"),
    [('{"to": ' + "[" * 70_000, "nested more than 16"), ('{"to": "x", "amount": NaN}', "NaN"),
     ('{"amount": "1", "amount": "2"}', "appears twice")],
    ids=["70000-deep", "nan", "duplicate"],
)
def test_call_from_tool_refuses_hostile_json_arguments_with_a_typed_error(text, problem):
    """A model's output is hostile input (JSON 70,000 deep once overflowed the json module's C stack)."""
    with pytest.raises(InvalidInputError) as info:
        call_from_tool("usdc_transfer", text, policy(), names=NAMES, tokens=TOKENS)
    assert info.value.field == "arguments" and problem in str(info.value)
