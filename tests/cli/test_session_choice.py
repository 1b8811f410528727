"""`send`/`call` act under a live session that allows the action, not blindly the newest grant.

Grant A (7 days, 5 uses) then B (10 minutes, 3 uses) to the same key and use B three times: the next
`smartkeys send --key K` used to pick B (the newest) and refuse, although A allows the send.
"""

from __future__ import annotations

from pathlib import Path

BEEF = "0x000000000000000000000000000000000000bEEF"


def _policy_file(tmp_path: Path, name: str, key: str, valid_for: str, max_uses: int, per_call: str = "0.1 ether") -> str:
    path = tmp_path / name
    path.write_text(f'''
key = "{key}"
valid_for = "{valid_for}"

[[allow]]
send_native_to = "{BEEF}"

[limits]
max_uses = {max_uses}
gas_budget = "0.01 ether"
native = {{ per_call = "{per_call}", total = "1 ether" }}
''')
    return str(path)


def _grant(cli, path) -> str:
    result = cli("--json", "grant", "--policy", path)
    assert result.code == 0, result.err
    return result.json["session_id"]


def _send(cli, amount="0.001 ether", *extra):
    return cli("--json", "send", BEEF, amount, "--key", "agent", "--via", "direct", *extra)


def test_send_uses_the_older_session_when_the_newest_is_used_up(cli, delegated, agent, tmp_path):
    a = _grant(cli, _policy_file(tmp_path, "a.toml", agent.address, "7d", 5))
    b = _grant(cli, _policy_file(tmp_path, "b.toml", agent.address, "10m", 3))
    for _ in range(3):
        result = _send(cli)
        assert result.code == 0 and result.json["session_id"] == b, result.err
    result = _send(cli)
    assert result.code == 0, result.err
    assert result.json["session_id"] == a
    assert "does not allow this action" in result.err and "--session" in result.err


def test_when_no_session_allows_it_every_candidate_and_the_flag_are_named(cli, delegated, agent, tmp_path):
    a = _grant(cli, _policy_file(tmp_path, "a.toml", agent.address, "7d", 5, per_call="0.01 ether"))
    b = _grant(cli, _policy_file(tmp_path, "b.toml", agent.address, "10m", 3, per_call="0.02 ether"))
    result = _send(cli, "0.05 ether")
    assert result.code == 3, result.err
    error = result.json["error"]
    assert error["type"] == "NoSessionAllowsError"
    assert a in error["message"] and b in error["message"] and "--session" in error["message"]
    assert error["message"].index(b) < error["message"].index(a)  # newest first
    # each candidate's reason in ether, with what it would allow
    assert "at most 0.01 ETH per call" in error["message"] and "at most 0.02 ETH per call" in error["message"]


def test_session_flag_still_picks_exactly_that_session(cli, delegated, agent, tmp_path):
    a = _grant(cli, _policy_file(tmp_path, "a.toml", agent.address, "7d", 5))
    _grant(cli, _policy_file(tmp_path, "b.toml", agent.address, "10m", 3))
    result = _send(cli, "0.001 ether", "--session", a)
    assert result.code == 0 and result.json["session_id"] == a, result.err
