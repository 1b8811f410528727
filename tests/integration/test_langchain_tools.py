"""The session's tools as langchain-core tools, invoked without any model: an allowed call, a refused one (its
typed reason and values come back as the tool's error content; nothing sent), and the read-only budget."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("langchain_core", reason="the langchain extra: pip install 'smartkeys[langchain]'")

from langchain_core.messages import ToolMessage  # noqa: E402
from langchain_core.tools import BaseTool  # noqa: E402

from smartkeys.langchain_tools import SessionToolRefusal, langchain_tools  # noqa: E402
from smartkeys.policy_codec import Permission, TokenCap  # noqa: E402
from smartkeys.toolbox import SessionToolbox  # noqa: E402

USDC = 10**6
RECIPIENT = "0x000000000000000000000000000000000000bEEF"


@pytest.fixture
def toolbox(grant, session_key, token, bundler):
    agent = grant(session_key, permissions=(Permission(token.address, "transfer(address,uint256)"),),
                  token_caps=(TokenCap(token.address, 10 * USDC),), max_uses=5)
    return SessionToolbox(agent, via="user_op", bundler=bundler, names={token.address: "usdc"})


def test_tools_mirror_the_toolbox(toolbox):
    tools = {t.name: t for t in langchain_tools(toolbox)}
    assert all(isinstance(t, BaseTool) for t in tools.values())
    assert list(tools) == [s.name for s in toolbox.definitions()]
    transfer = tools["usdc_transfer"]
    assert transfer.args["to"]["pattern"] == "^0x[0-9a-fA-F]{40}$"  # the JSON schema a model is bound with
    assert "10 USDC" in transfer.description
    assert tools["session_budget"].metadata == {"smartkeys_read_only": True}


def test_invoke_allowed_then_refused_then_budget(toolbox, token):
    tools = {t.name: t for t in langchain_tools(toolbox)}
    result = tools["usdc_transfer"].invoke({"to": RECIPIENT, "amount": 3 * USDC})
    assert result["success"] is True
    # the CLI's JSON model: decimal strings in base units with their human twins
    assert result["charges"]["tokens"] == {token.address: {"amount": str(3 * USDC), "amount_text": "3 USDC"}}
    left = next(a for a in result["session"]["assets"] if a["asset"] == token.address)
    assert (left["remaining"], left["remaining_text"]) == (str(7 * USDC), "7 USDC")

    refused = tools["usdc_transfer"].invoke({"to": RECIPIENT, "amount": 8 * USDC})
    payload = json.loads(refused)
    assert payload["error"] == "TokenSpendCapExceeded"
    assert (payload["fields"]["spent"], payload["fields"]["requested"], payload["fields"]["cap"]) == \
        (str(3 * USDC), str(8 * USDC), str(10 * USDC))
    assert token.functions.balanceOf(RECIPIENT).call() == 3 * USDC  # the refusal sent nothing

    budget = tools["session_budget"].invoke({})
    usdc = next(a for a in budget["assets"] if a["asset"] == token.address)
    assert (usdc["spent"], usdc["remaining"]) == (str(3 * USDC), str(7 * USDC))
    assert (usdc["spent_text"], usdc["remaining_text"], usdc["symbol"], usdc["decimals"]) == \
        ("3 USDC", "7 USDC", "USDC", 6)


def test_a_tool_call_refusal_is_an_error_tool_message(toolbox):
    tools = {t.name: t for t in langchain_tools(toolbox)}
    message = tools["usdc_transfer"].invoke(
        {"type": "tool_call", "id": "call_1", "name": "usdc_transfer", "args": {"to": "0x12", "amount": 1}})
    assert isinstance(message, ToolMessage) and message.status == "error" and message.tool_call_id == "call_1"
    assert json.loads(message.content)["field"] == "arguments.to"


def test_without_error_handling_the_typed_error_is_raised(toolbox):
    tools = {t.name: t for t in langchain_tools(toolbox, handle_errors=False)}
    with pytest.raises(SessionToolRefusal) as info:
        tools["usdc_transfer"].invoke({"to": RECIPIENT, "amount": 11 * USDC})
    assert type(info.value.error).__name__ == "TokenSpendCapExceeded"
    assert info.value.error.cap == 10 * USDC and info.value.payload["fields"]["cap"] == str(10 * USDC)
