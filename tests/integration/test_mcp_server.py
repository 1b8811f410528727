"""The MCP server, driven by the ``mcp`` package's own client on the embedded chain: list the tools, call an
allowed one, a refused one (a tool error with the typed reason and values; nothing sent; the server keeps
serving), then read the budget."""

from __future__ import annotations

import asyncio
import json

import pytest

pytest.importorskip("mcp", reason="the mcp extra: pip install 'smartkeys[mcp]'")

from mcp import Client  # noqa: E402

from smartkeys.mcp_server import build_server  # noqa: E402
from smartkeys.policy_codec import Permission, TokenCap  # noqa: E402
from smartkeys.toolbox import READ_ONLY_TOOLS, SessionToolbox  # noqa: E402

USDC = 10**6
RECIPIENT = "0x000000000000000000000000000000000000bEEF"


@pytest.fixture
def toolbox(grant, session_key, token, bundler):
    agent = grant(session_key, permissions=(Permission(token.address, "transfer(address,uint256)"),),
                  token_caps=(TokenCap(token.address, 10 * USDC),), max_uses=5)
    return SessionToolbox(agent, via="user_op", bundler=bundler, names={token.address: "usdc"})


def _balance(token, who):
    return token.functions.balanceOf(who).call()


@pytest.mark.parametrize("mode", ["auto", "legacy"])  # in-process dispatch, and JSON-RPC over in-memory streams
def test_list_call_refuse_then_read_the_budget(toolbox, token, mode):
    async def session():
        async with Client(build_server(toolbox), mode=mode) as client:
            listed = await client.list_tools()
            ok = await client.call_tool("usdc_transfer", {"to": RECIPIENT, "amount": "2500000"})
            before_refusal = _balance(token, RECIPIENT)
            refused = await client.call_tool("usdc_transfer", {"to": RECIPIENT, "amount": 9 * USDC})
            after_refusal = _balance(token, RECIPIENT)
            budget = await client.call_tool("session_budget", {})
            return listed, ok, (before_refusal, after_refusal), refused, budget

    listed, ok, balances, refused, budget = asyncio.run(session())

    tools = {t.name: t for t in listed.tools}
    assert set(tools) == {"usdc_transfer", *READ_ONLY_TOOLS}
    assert tools["usdc_transfer"].input_schema["required"] == ["to", "amount"]
    assert "10 USDC" in tools["usdc_transfer"].description  # the cap, in human units read from the token
    assert tools["session_budget"].annotations.read_only_hint is True
    assert tools["usdc_transfer"].annotations.read_only_hint is False

    assert ok.is_error is False, ok.content
    assert ok.structured_content["success"] is True and ok.structured_content["path"] == "user_op"
    # amounts as the CLI's JSON gives them: decimal strings in base units, each with its human twin
    charges = ok.structured_content["charges"]
    assert charges["tokens"] == {token.address: {"amount": "2500000", "amount_text": "2.5 USDC"}}
    assert (charges["native"], charges["native_text"], charges["uses"]) == ("0", "0 ETH", 1)
    assert int(charges["gas"]) > 0 and charges["gas_text"].endswith(" ETH")  # a user op: gas counts
    left = next(a for a in ok.structured_content["session"]["assets"] if a["asset"] == token.address)
    assert (left["remaining"], left["remaining_text"]) == ("7500000", "7.5 USDC")
    assert ok.structured_content["session"]["uses_left"] == 4
    assert balances == (2_500_000, 2_500_000)  # the refused call moved nothing

    assert refused.is_error is True
    payload = json.loads(refused.content[0].text)
    assert payload == refused.structured_content
    assert payload["error"] == "TokenSpendCapExceeded"
    assert payload["fields"]["spent"] == "2500000" and payload["fields"]["cap"] == str(10 * USDC)
    assert payload["fields"]["requested"] == str(9 * USDC)
    assert "9 USDC" in payload["message"]  # the message in the policy's units

    assert budget.is_error is False
    usdc = next(a for a in budget.structured_content["assets"] if a["asset"] == token.address)
    assert (usdc["symbol"], usdc["decimals"]) == ("USDC", 6)
    assert (usdc["spent"], usdc["cap"], usdc["remaining"]) == ("2500000", str(10 * USDC), "7500000")
    assert (usdc["spent_text"], usdc["cap_text"], usdc["remaining_text"]) == ("2.5 USDC", "10 USDC", "7.5 USDC")
    gas = next(a for a in budget.structured_content["assets"] if a["asset"] == "gas")
    assert gas["spent"] == charges["gas"] and gas["decimals"] == 18  # the same figure as the use charged
    # nothing in the whole result is a JSON number that could be an amount past 2**53
    numeric = {k for a in budget.structured_content["assets"] for k, v in a.items()
               if isinstance(v, int) and not isinstance(v, bool)}
    assert numeric <= {"period", "decimals", "period_resets_at"}, numeric  # seconds and digits, not amounts


def test_bad_arguments_and_unknown_tools_are_tool_errors_naming_the_field(toolbox):
    async def session():
        async with Client(build_server(toolbox)) as client:
            bad = await client.call_tool("usdc_transfer", {"to": "0x1234", "amount": 1})
            unknown = await client.call_tool("usdc_approve", {"spender": RECIPIENT, "amount": 1})
            extra = await client.call_tool("session_status", {"verbose": True})
            status = await client.call_tool("session_status", {})
            return bad, unknown, extra, status

    bad, unknown, extra, status = asyncio.run(session())
    assert bad.is_error and bad.structured_content["field"] == "arguments.to"
    assert unknown.is_error and unknown.structured_content["field"] == "tool_name"
    assert extra.is_error and extra.structured_content["field"] == "arguments.verbose"
    assert status.is_error is False  # the server kept serving after three errors
    assert status.structured_content["live"] is True and status.structured_content["uses"] == 0


def test_time_left_and_status_follow_the_chain(toolbox, chain):
    policy = toolbox.agent.policy
    left = toolbox.call("session_time_left")
    assert left["valid_until"] == policy.valid_until and left["valid_until_iso"].endswith("Z")
    assert left["seconds_left"] == policy.valid_until - left["now"] > 0 and left["expired"] is False
    chain.set_next_block_timestamp(policy.valid_until + 1)
    chain.mine()
    assert toolbox.call("session_time_left")["expired"] is True
    assert toolbox.call("session_time_left")["seconds_left"] == 0
    status = toolbox.call("session_status")
    assert status["live"] is True and status["in_window"] is False and status["usable"] is False
    assert status["status"] == "expired" and status["time_left_text"] == "0 s" and status["uses_left"] == 5


def test_a_node_failure_is_a_tool_error_without_the_message_and_the_server_keeps_serving(toolbox, monkeypatch):
    def down(*args, **kwargs):
        raise ConnectionError("cannot reach https://eth.example/v2/SECRET-API-KEY")

    async def session():
        async with Client(build_server(toolbox)) as client:
            with monkeypatch.context() as patch:
                patch.setattr(toolbox.agent, "batch", down)
                failed = await client.call_tool("usdc_transfer", {"to": RECIPIENT, "amount": 1})
            status = await client.call_tool("session_status", {})
            return failed, status

    failed, status = asyncio.run(session())
    assert failed.is_error and failed.structured_content["error"] == "ConnectionError"
    assert "SECRET-API-KEY" not in failed.content[0].text
    assert status.is_error is False and status.structured_content["uses"] == 0


@pytest.mark.parametrize("arguments", ['{"x": 1}', "not json", "[1]", ["x"]])
def test_read_only_tools_refuse_arguments(toolbox, arguments):
    from smartkeys.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="arguments"):
        toolbox.call("session_budget", arguments)
