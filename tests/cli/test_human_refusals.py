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
    assert result.json["error"]["fields"]["cap"] == str(10**17)  # raw, as a decimal string like every amount
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


# --------------------------------------------------------------------------- kind 2: what is left


def test_send_prints_what_is_left_and_its_json_has_the_session_model(cli, chain, native_granted, delegated, agent):
    result = cli("send", BEEF, "0.1 ether", "--key", "agent", "--via", "direct", env=_agent_env(delegated))
    assert result.code == 0, result.err
    assert "charged" in result.out and "native 0.1 ETH" in result.out
    assert "100000000000000000" not in result.out
    left = next(line for line in result.out.splitlines() if line.strip().startswith("left"))
    assert "0.15 ETH of 0.25 ETH" in left and "2 of 3 uses" in left and "h" in left and "until" in left
    doc = cli("--json", "send", BEEF, "0.1 ether", "--key", "agent", "--via", "direct",
              env=_agent_env(delegated)).json
    assert doc["amount"] == str(10**17) and doc["amount_text"] == "0.1 ETH"
    assert doc["charges"]["native"] == str(10**17) and doc["charges"]["native_text"] == "0.1 ETH"
    native = {a["asset"]: a for a in doc["session"]["assets"]}["native"]
    assert (native["spent"], native["remaining"], native["remaining_text"]) == (str(2 * 10**17), str(5 * 10**16),
                                                                                "0.05 ETH")
    assert doc["session"]["uses_left"] == 1 and 0 < doc["session"]["seconds_left"] <= 24 * 3600


def test_status_shows_remaining_uses_left_and_time_left(cli, chain, native_granted, delegated, agent):
    assert cli("send", BEEF, "0.1 ether", "--key", "agent", "--via", "direct", env=_agent_env(delegated)).code == 0
    result = cli("status")
    assert result.code == 0, result.err
    assert "LEFT" in result.out
    line = next(line for line in result.out.splitlines() if native_granted[:18] in line)
    assert "1/3 (2 left)" in line and " left)" in line.split("1/3")[0]  # time left in VALID UNTIL
    assert "0.1 ETH" in result.out and "0.15 ETH" in result.out
    doc = cli("--json", "status").json
    (session,) = doc["sessions"]
    assert isinstance(doc["account"]["balance"], str) and doc["account"]["balance_text"].endswith(" ETH")
    assert session["status"] == "live" and session["uses_left"] == 2
    native = {a["asset"]: a for a in session["assets"]}["native"]
    assert native["remaining"] == str(15 * 10**16) and native["remaining_text"] == "0.15 ETH"
    audit = cli("audit").out
    line = next(line for line in audit.splitlines() if native_granted[:18] in line)
    assert "active (" in line and " left)" in line and "1/3 (2 left)" in line and "0.15 ETH" in line


def test_user_op_without_gas_budget_is_refused_with_the_fix_and_grant_warned(cli, chain, delegated, tmp_path,
                                                                             agent, fund):
    fund(delegated, 10**18)
    env = {"SMARTKEYS_BUNDLER_URL": "http://127.0.0.1:9/rpc"}
    granted = cli("--json", "grant", "--policy", str(_native_policy(tmp_path, agent)), env=env)
    assert granted.code == 0, granted.err
    (warning,) = granted.json["warnings"]
    assert "no gas budget" in warning and "bundler" in warning and "limits.gas_budget" in warning
    dry = cli("grant", "--dry-run", "--policy", str(_native_policy(tmp_path, agent)), env=env)
    assert dry.code == 0 and "WARNING: this policy has no gas budget" in dry.out + dry.err
    # without a bundler configured, nothing to warn about
    assert cli("--json", "grant", "--dry-run", "--policy", str(_native_policy(tmp_path, agent))).json["warnings"] == []
    result = cli("--json", "send", BEEF, "0.01 ether", "--key", "agent", "--via", "user-op",
                 env=_agent_env(delegated))
    assert result.code == 3, result.err
    message = result.json["error"]["message"]
    assert "no gas budget" in message and "--via direct" in message and "budget=0" not in message


# --------------------------------------------------------------------------- kind 3: one model, text and JSON


def test_revoked_session_status_and_audit_json_agree_with_the_text(cli, chain, native_granted, delegated, agent):
    assert cli("send", BEEF, "0.1 ether", "--key", "agent", "--via", "direct", env=_agent_env(delegated)).code == 0
    assert cli("revoke", native_granted).code == 0
    text = cli("status").out
    line = next(line for line in text.splitlines() if native_granted[:18] in line)
    (session,) = cli("--json", "status").json["sessions"]
    assert session["status"] == "revoked" and " revoked " in line
    assert session["uses"] == 1 and "1/3" in line
    status_native = {a["asset"]: a for a in session["assets"]}["native"]
    assert status_native["spent_text"] in line and status_native["spent"] == str(10**17)  # the real spend
    audit = cli("--json", "audit").json
    (audited,) = audit["sessions"]
    assert audited["status"] == "revoked"
    for a in audited["assets"]:  # amounts are strings in base units, each with its human twin
        assert isinstance(a["spent"], str) and isinstance(a["cap"], str) and "spent_text" in a
    audit_native = {a["asset"]: a for a in audited["assets"]}["native"]
    for name in ("spent", "cap", "remaining", "spent_text", "remaining_text"):
        assert audit_native[name] == status_native[name], name
    gas = {a["asset"]: a for a in audited["assets"]}["gas"]
    assert gas["spent"] == "0" and gas["spent_text"] == "0 ETH"  # known (direct path), same as the text
    assert "—" not in cli("audit").out.split("timeline:")[0]


# --------------------------------------------------------------------------- kind 5: what the README promises


def test_audit_plot_without_matplotlib_exits_2_with_the_fix(cli, delegated, granted, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    result = cli("--json", "audit", "--plot", "spend.png")
    assert result.code == 2, result.err
    assert "matplotlib" in result.json["error"]["message"] and "pip install" in result.json["error"]["message"]
    assert "Traceback" not in result.err



def test_a_refused_call_names_the_function_the_user_typed(cli, chain, granted, delegated, agent, usdc):
    result = cli("--json", "call", usdc.address, "mint(address,uint256)", chain.accounts[5].address, "1",
                 "--key", "agent", env=_agent_env(delegated))
    assert result.code == 3, result.err
    message = result.json["error"]["message"]
    assert "calling mint(address,uint256) on USDC" in message and "0x40c10f19" not in message
