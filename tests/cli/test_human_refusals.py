"""Refusals and reports in the policy's own units (issue 13): what was asked, what is left, what to do."""

from __future__ import annotations

import pytest

from tests.cli.test_commands import _agent_env, _chain_state


def _native_policy(tmp_path, agent, *, extra: str = "", valid_for: str = "24h"):
    path = tmp_path / "native.toml"
    path.write_text(f'''
key = "{agent.address}"
valid_for = "{valid_for}"

[[allow]]
contract = "0x000000000000000000000000000000000000bEEF"
functions = "*"

[limits]
max_uses = 3
native = {{ per_call = "0.1 ether", total = "0.25 ether" }}
{extra}
''')
    return path


@pytest.fixture
def native_granted(cli, delegated, tmp_path, agent, fund):
    fund(delegated, 10**18)
    result = cli("--json", "grant", "--policy", str(_native_policy(tmp_path, agent)))
    assert result.code == 0, result.err
    return result.json["session_id"]


BEEF = "0x000000000000000000000000000000000000bEEF"


def test_send_over_the_per_call_cap_says_the_cap_in_ether_and_what_to_send(cli, chain, native_granted, delegated,
                                                                           agent):
    before = _chain_state(chain, delegated, agent.address)
    result = cli("--json", "send", BEEF, "0.5 ether", "--key", "agent", "--via", "direct",
                 env=_agent_env(delegated))
    assert result.code == 3, result.err
    message = result.json["error"]["message"]
    assert "0.5 ETH" in message and "at most 0.1 ETH per call" in message and "send at most 0.1 ETH" in message
    assert "500000000000000000" not in message and "0x" not in message.split("refused")[1][:40]
    # the typed class and its raw fields are kept for programs
    assert result.json["error"]["type"] == "NativeValueAboveCallCap"
    assert int(result.json["error"]["fields"]["cap"]) == 10**17
    assert _chain_state(chain, delegated, agent.address) == before


def test_send_over_the_total_cap_says_what_is_left(cli, chain, native_granted, delegated, agent):
    assert cli("send", BEEF, "0.1 ether", "--key", "agent", "--via", "direct", env=_agent_env(delegated)).code == 0
    assert cli("send", BEEF, "0.1 ether", "--key", "agent", "--via", "direct", env=_agent_env(delegated)).code == 0
    result = cli("--json", "send", BEEF, "0.1 ether", "--key", "agent", "--via", "direct",
                 env=_agent_env(delegated))
    assert result.code == 3, result.err
    message = result.json["error"]["message"]
    assert "asked for 0.1 ETH" in message and "only 0.05 ETH" in message and "0.25 ETH total" in message
    assert "send at most 0.05 ETH" in message


def test_call_outside_the_scope_names_the_function_not_its_selector(cli, chain, granted, delegated, agent, usdc):
    result = cli("--json", "call", usdc.address, "approve(address,uint256)", chain.accounts[5].address, "1",
                 "--key", "agent", env=_agent_env(delegated))
    assert result.code == 3
    message = result.json["error"]["message"]
    assert "approve(address,uint256)" in message and "0x095ea7b3" not in message
    assert "transfer(address,uint256)" in message  # what the session does allow
    assert "ask the owner" in message


def test_send_after_expiry_prints_utc_times_and_the_renew_hint(cli, chain, delegated, tmp_path, agent, fund):
    fund(delegated, 10**18)
    granted = cli("--json", "grant", "--policy", str(_native_policy(tmp_path, agent, valid_for="1h")))
    assert granted.code == 0, granted.err
    chain.set_next_block_timestamp(chain.time() + 2 * 3600)
    chain.mine(1)
    result = cli("--json", "send", BEEF, "0.01 ether", "--key", "agent", "--via", "direct",
                 "--session", granted.json["session_id"], env=_agent_env(delegated))
    assert result.code == 3, result.err
    message = result.json["error"]["message"]
    assert "expired at" in message and " UTC" in message and "ago" in message and "renew" in message
    valid_until = granted.json["policy"]["valid_until"] if "policy" in granted.json else None
    if valid_until is not None:
        assert str(valid_until) not in message


def test_token_cap_refusal_str_in_the_sdk_is_in_token_units(chain, usdc, fund):
    """The typed exception's str() from SessionAgent speaks USDC, and keeps the class and fields."""
    from eth_account import Account

    from smartkeys.account import Owner, SessionAgent
    from smartkeys.errors import get_error_class
    from smartkeys.policy_codec import Permission, SessionPolicy, TokenCap

    owner = Owner(chain.w3, chain.accounts[1])
    owner.delegate()
    key = Account.create()
    fund(key.address, 10**18)
    policy = SessionPolicy(key=key.address, valid_after=0, valid_until=chain.time() + 3600,
                           permissions=(Permission(usdc.address, "transfer(address,uint256)"),),
                           token_caps=(TokenCap(usdc.address, 50 * 10**6),))
    owner.grant(policy)
    agent = SessionAgent(chain.w3, owner.address, key, policy)
    agent.transfer(usdc.address, chain.accounts[5].address, 45 * 10**6, via="direct")
    with pytest.raises(get_error_class("TokenSpendCapExceeded")) as info:
        agent.transfer(usdc.address, chain.accounts[5].address, 10 * 10**6, via="direct")
    text = str(info.value)
    assert "asked for 10 USDC" in text and "only 5 USDC" in text and "send at most 5 USDC" in text
    assert "45000000" not in text
    assert info.value.spent == 45 * 10**6 and info.value.cap == 50 * 10**6
