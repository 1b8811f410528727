"""`smartkeys rotate` and `smartkeys renew` through ``main()`` on the embedded chain (--json parsed): the old key
is refused after a rotation, the new one spends only what was left, renew moves the window either way, a raise
exits 3 naming the field with nothing sent, and both show in `status` and `audit`."""

from __future__ import annotations

from tests.cli.test_commands import _agent_env, _chain_state


def _send(cli, chain, delegated, usdc, key: str, amount: str, session: str | None = None):
    extra = ("--session", session) if session else ()
    return cli("--json", "send", chain.accounts[5].address, amount, "--token", usdc.address, "--key", key,
               "--via", "direct", *extra, env=_agent_env(delegated))


def test_rotate_generates_a_key_the_old_one_is_refused_and_the_new_one_spends_what_was_left(
    cli, chain, granted, delegated, agent, usdc, fund
):
    assert _send(cli, chain, delegated, usdc, "agent", "60").code == 0
    result = cli("--json", "rotate", granted, "--label", "agent2", "--light-kdf")
    assert result.code == 0, result.err
    doc = result.json
    assert doc["previous_session_id"] == granted and doc["previous_key"] == agent.address
    assert doc["key"] == doc["new_keystore"]["address"] != agent.address
    assert doc["transaction_hash"].startswith("0x")
    new_id = doc["session_id"]

    refused = _send(cli, chain, delegated, usdc, "agent", "1", session=granted)
    assert refused.code == 3 and "SessionNotActive" in refused.err
    fund(doc["key"], 10**18)
    over = _send(cli, chain, delegated, usdc, "agent2", "40.000001")  # 60 of 100 USDC spent before
    assert over.code == 3 and "TokenSpendCapExceeded" in over.err
    ok = _send(cli, chain, delegated, usdc, "agent2", "40")
    assert ok.code == 0, ok.err and ok.json["session_id"] == new_id

    status = cli("--json", "status")
    assert status.code == 0, status.err
    sessions = {s["session_id"]: s for s in status.json["sessions"]}
    assert sessions[granted]["replaced_by"] == new_id and sessions[new_id]["replaces"] == granted
    audit = cli("--json", "audit")
    assert audit.code == 0, audit.err
    kinds = [e["kind"] for e in audit.json["entries"]]
    assert "rotate" in kinds
    audited = {s["session_id"]: s for s in audit.json["sessions"]}
    assert audited[new_id]["assets"][-1]["spent"] == "100000000"  # 60 carried + 40 USDC (base units)
    assert audited[granted]["status"] == "revoked" and audited[granted]["revoked"]["kind"] == "rotated"
    assert audited[new_id]["replaces"] == granted and audited[granted]["replaced_by"] == new_id
    human = cli("audit")
    assert human.code == 0 and " rotate " in human.out and "rotated" in human.out and "replaces 0x" in human.out
    human = cli("status")
    assert human.code == 0 and "was rotated as" in human.out


def test_rotate_to_a_given_address_for_1h_and_the_dead_old_id_cannot_be_rotated_again(cli, chain, granted,
                                                                                      delegated):
    other = chain.accounts[6].address
    assert cli("rotate", "hello").code == 2
    result = cli("--json", "rotate", granted, "--new-key", other, "--for", "1h")
    assert result.code == 0, result.err
    assert result.json["key"] == other and result.json["new_keystore"] is None
    now = chain.w3.eth.get_block("latest")["timestamp"]
    assert now < result.json["valid_until"] <= now + 3_600 < result.json["previous_valid_until"]
    before = _chain_state(chain, delegated)
    again = cli("rotate", granted, "--new-key", chain.accounts[7].address)
    assert again.code == 3 and "SessionNotActive" in again.err
    assert _chain_state(chain, delegated) == before


def test_renew_for_24h_then_shorter_for_1h_keeps_what_was_spent(cli, chain, granted, delegated, usdc):
    assert _send(cli, chain, delegated, usdc, "agent", "10").code == 0
    longer = cli("--json", "renew", granted, "--for", "48h")
    assert longer.code == 0, longer.err
    assert longer.json["valid_until"] > longer.json["previous_valid_until"]
    shorter = cli("--json", "renew", longer.json["session_id"], "--for", "1h")
    assert shorter.code == 0, shorter.err
    doc = shorter.json
    now = chain.w3.eth.get_block("latest")["timestamp"]
    assert now < doc["valid_until"] <= now + 3_600
    over = _send(cli, chain, delegated, usdc, "agent", "90.000001")
    assert over.code == 3 and "TokenSpendCapExceeded" in over.err
    audit = cli("--json", "audit")
    assert [e["kind"] for e in audit.json["entries"]].count("renew") == 2


def test_renew_lowering_a_cap_works_and_raising_exits_3_naming_the_field_with_nothing_sent(
    cli, chain, granted, delegated, usdc
):
    lowered = cli("--json", "renew", granted, "--token-cap", f"{usdc.address}=50", "--max-uses", "3")
    assert lowered.code == 0, lowered.err
    assert lowered.json["policy"]["token_caps"][0]["cap"] == "50000000" and lowered.json["policy"]["max_uses"] == 3
    before = _chain_state(chain, delegated)
    raised = cli("renew", lowered.json["session_id"], "--token-cap", f"{usdc.address}=51")
    assert raised.code == 3, raised.err
    assert "SuccessorRaisesLimit" in raised.err and "token_caps[].cap" in raised.err and "fix:" in raised.err
    assert _chain_state(chain, delegated) == before


def test_renew_needs_a_change(cli, granted):
    result = cli("renew", granted)
    assert result.code == 2 and "--for" in result.err
