"""``smartkeys mcp``: the session it serves, the names it takes from a policy file, and the password rule (the
server owns stdin, so it never prompts). The stdio protocol itself is tested in tests/integration/test_mcp_cli.py."""

from __future__ import annotations

import pytest

pytest.importorskip("mcp", reason="the mcp extra: pip install 'smartkeys[mcp]'")


@pytest.fixture
def served(monkeypatch):
    """Replace the stdio loop: record the toolbox the command built."""
    seen = []
    monkeypatch.setattr("smartkeys.mcp_server.serve_stdio", lambda toolbox, **kw: seen.append(toolbox))
    return seen


def test_mcp_serves_the_keys_session_with_the_policy_files_names(cli, granted, agent, policy_file, usdc, served,
                                                                  owner_address):
    result = cli("mcp", "--key", "agent", "--policy", str(policy_file), env={"SMARTKEYS_ACCOUNT": owner_address})
    assert result.code == 0, result.err
    assert result.out == ""  # stdout belongs to the protocol
    (toolbox,) = served
    assert "0x" + toolbox.agent.session_id.hex() == granted
    assert toolbox.via == "direct"  # no bundler URL configured
    names = [spec.name for spec in toolbox.definitions()]
    assert names == ["usdc_transfer", "session_budget", "session_status", "session_time_left"]
    assert f"serving session {granted}" in result.err and "usdc_transfer" in result.err
    status = toolbox.call("session_status")
    assert status["usable"] is True and status["key"] == agent.address


def test_mcp_with_a_keystore_and_no_password_source_exits_2_without_reading_stdin(cli, granted, agent, served,
                                                                                    tty, owner_address):
    result = cli("mcp", "--key", "agent", stdin=tty("hunter2\n"), drop=("SMARTKEYS_PASSWORD",),
                 env={"SMARTKEYS_ACCOUNT": owner_address})
    assert result.code == 2 and served == []
    assert "cannot prompt" in result.err and "SMARTKEYS_PASSWORD" in result.err


def test_mcp_takes_the_key_from_the_environment(cli, granted, agent, served, owner_address):
    result = cli("mcp", "--via", "direct", drop=("SMARTKEYS_PASSWORD",),
                 env={"SMARTKEYS_SESSION_KEY": agent.account.key.hex(), "SMARTKEYS_ACCOUNT": owner_address})
    assert result.code == 0, result.err
    assert served[0].agent.key_address == agent.address
