"""`smartkeys rotate` when the old key holds other live sessions (review 12, finding 3): by default
every live session of the key is rotated, so the old key is refused everywhere; --only rotates the named one
and says which sessions the old key keeps. `--for` on rotate and renew has the policy file's 400-day guard (finding 5)."""

from __future__ import annotations

import pytest

from tests.cli.conftest import *  # noqa: F403  (cli, granted, delegated, agent, usdc, policy_file fixtures)
from tests.cli.test_commands import _agent_env, _chain_state


def _send(cli, chain, delegated, usdc, key, amount, session):
    return cli("--json", "send", chain.accounts[5].address, amount, "--token", usdc.address, "--key", key,
               "--via", "direct", "--session", session, env=_agent_env(delegated))


def _second_session(cli, policy_file):
    second_file = policy_file.with_name("second.toml")
    second_file.write_text("salt = 1\n" + policy_file.read_text())
    second = cli("--json", "grant", "--policy", str(second_file))
    assert second.code == 0, second.err
    return second.json["session_id"]


def _status(cli):
    result = cli("--json", "status")
    assert result.code == 0, result.err
    return {s["session_id"]: s for s in result.json["sessions"]}


def test_rotate_only_rotates_the_named_session_and_says_the_old_key_still_holds_the_other(
        cli, chain, granted, delegated, agent, usdc, policy_file):
    second = _second_session(cli, policy_file)
    result = cli("rotate", granted, "--new-key", chain.accounts[6].address, "--only")
    assert result.code == 0, result.err
    assert "is refused from now on" not in result.out + result.err
    assert "warning: --only" in result.err and second in result.err and agent.address in result.err
    sessions = _status(cli)
    assert sessions[granted]["status"] == "revoked" and sessions[second]["status"] == "live"
    assert "replaced_by" not in sessions[second] or not sessions[second]["replaced_by"]
    # as the warning says, the old key still spends through the other session
    assert _send(cli, chain, delegated, usdc, "agent", "1", second).code == 0


def test_rotate_only_json_lists_the_sessions_the_old_key_keeps(cli, chain, granted, delegated, policy_file):
    second = _second_session(cli, policy_file)
    result = cli("--json", "rotate", granted, "--new-key", chain.accounts[6].address, "--only")
    assert result.code == 0, result.err
    assert result.json["old_key_still_live_in"] == [second] and result.json["also_rotated"] == []


@pytest.mark.parametrize("by", ["session_id", "key"])
def test_rotate_rotates_every_live_session_of_the_key_and_the_old_key_is_refused_on_each(
        cli, chain, granted, delegated, agent, usdc, policy_file, by):
    second = _second_session(cli, policy_file)
    new_key = chain.accounts[6].address
    result = cli("--json", "rotate", granted if by == "session_id" else agent.address, "--new-key", new_key)
    assert result.code == 0, result.err
    doc = result.json
    rotated = {doc["previous_session_id"]: doc["session_id"]}
    rotated.update({d["previous_session_id"]: d["session_id"] for d in doc["also_rotated"]})
    assert set(rotated) == {granted, second} and len(doc["also_rotated"]) == 1
    assert doc["key"] == new_key and all(d["key"] == new_key for d in doc["also_rotated"])
    assert doc["old_key_still_live_in"] == []
    sessions = _status(cli)
    for old, successor in rotated.items():
        assert sessions[old]["replaced_by"] == successor and sessions[successor]["replaces"] == old
        assert sessions[successor]["key"] == new_key
        leaked = _send(cli, chain, delegated, usdc, "agent", "10", old)
        assert leaked.code == 3 and "SessionNotActive" in leaked.err


def test_renew_and_rotate_for_longer_than_400_days_need_allow_long_lifetime(cli, chain, granted, delegated):
    before_state, before_status = _chain_state(chain, delegated), _status(cli)
    for command in (("renew", granted), ("rotate", granted, "--new-key", chain.accounts[6].address)):
        refused = cli("--json", *command, "--for", "401d")
        assert refused.code == 2 and "--for" in refused.err and "400 days" in refused.err, refused.err
        assert "--allow-long-lifetime" in refused.err
    assert _chain_state(chain, delegated) == before_state and _status(cli) == before_status
    at_limit = cli("--json", "renew", granted, "--for", "400d")
    assert at_limit.code == 0, at_limit.err
    now = chain.w3.eth.get_block("latest")["timestamp"]
    assert now < at_limit.json["valid_until"] <= now + 400 * 86_400
    longer = cli("--json", "renew", at_limit.json["session_id"], "--for", "401d", "--allow-long-lifetime")
    assert longer.code == 0, longer.err
    assert longer.json["valid_until"] > now + 400 * 86_400


def test_status_after_rotate_lists_rules_and_uses_left_only_for_the_successor(
        cli, chain, delegated, agent, usdc, tmp_path):
    """The smaller review-12 finding: status listed the revoked session's rules and "19 left" beside its
    successor's. Now status lists usable sessions only; audit (history) keeps the old one, marked, without
    uses left or a next use."""
    from tests.cli.test_rules_cli import _operator_file

    treasury, supplier = chain.accounts[5].address, chain.accounts[6].address
    policy = _operator_file(cli, tmp_path, agent, usdc, treasury, supplier)
    old = cli("--json", "grant", "--policy", str(policy)).json["session_id"]
    sent = cli("send", treasury, "3", "--token", "USDC", "--policy", str(policy), "--key", "agent", "--via", "direct",
               env={"SMARTKEYS_ACCOUNT": delegated})
    assert sent.code == 0, sent.err
    rotated = cli("--json", "rotate", old, "--new-key", chain.accounts[7].address)
    assert rotated.code == 0, rotated.err
    new = rotated.json["session_id"]
    text = cli("status").out
    rules_part = text[text.index("argument rules"):]
    assert new[:18] in rules_part and old[:18] not in rules_part
    assert f"{new[:18]}… at most one use every" in rules_part and "1 used this period, 19 left" in rules_part
    assert rules_part.count(" left") == 1
    audit_text = cli("audit").out
    old_lines = [line for line in audit_text.splitlines() if line.strip().startswith(f"{old[:18]}… (revoked)")]
    assert old_lines and not any(" left" in line or "next use" in line for line in old_lines), old_lines
    assert any(line.strip().startswith(f"{new[:18]}… at most one use every") for line in audit_text.splitlines())
