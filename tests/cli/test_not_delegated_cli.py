"""After `smartkeys undelegate`, the agent commands and the audit exit 2 with the typed error and its fix."""

from __future__ import annotations

import pytest

BEEF = "0x000000000000000000000000000000000000bEEF"


@pytest.mark.parametrize("command", ["send", "call", "audit"])
def test_agent_commands_and_audit_after_undelegate_exit_2_naming_delegate(cli, granted, usdc, command):
    assert cli("undelegate", "--yes").code == 0
    argv = {
        "send": ("send", BEEF, "1", "--token", usdc.address, "--key", "agent", "--via", "direct"),
        "call": ("call", usdc.address, "transfer(address,uint256)", BEEF, "1000000", "--key", "agent",
                 "--via", "direct"),
        "audit": ("audit",),
    }[command]
    result = cli("--json", *argv)
    assert result.code == 2, result.err
    error = result.json["error"]
    assert error["type"] == "NotDelegatedError"
    assert "has no code" in error["message"] and "smartkeys delegate" in error["message"]
    assert "BadFunctionCallOutput" not in result.err + result.out
