"""`smartkeys policy new --preset`, and what `send`, `status` and `audit` say about a session's argument rules
(a recipient list by its address-book names, a bound in USDC) and its rate limits (when the next use is
allowed), in text and in JSON."""

from __future__ import annotations

import re
from pathlib import Path

from smartkeys.policy_presets import PRESETS
from smartkeys.safe_files import tomllib

# --------------------------------------------------------------------------- policy new


def test_policy_new_help_lists_every_preset(cli):
    result = cli("policy", "new", "--help")
    assert result.code == 0
    for name, (summary, _) in PRESETS.items():
        assert re.search(rf"^  {re.escape(name)}\s+{re.escape(summary[:40])}", result.out, re.M), name
    assert all(name in cli("--help").out for name in PRESETS)


def test_policy_new_writes_the_preset_lists_what_to_fill_and_never_overwrites_unless_forced(cli, tmp_path):
    result = cli("policy", "new", "--preset", "operator", "--out", "ops.toml")
    assert result.code == 0, result.err
    path = tmp_path / "ops.toml"
    assert tomllib.loads(path.read_text())["limits"]["every"] == "10m"
    assert "fill in: key, tokens.USDC.address, address_book.treasury, address_book.supplier" in result.out
    path.write_text("# my edits\n")
    again = cli("--json", "policy", "new", "--preset", "observer", "--out", "ops.toml")
    assert again.code == 2 and again.json["error"]["field"] == "path" and "--force" in again.err
    assert path.read_text() == "# my edits\n"
    forced = cli("--json", "policy", "new", "--preset", "observer", "--out", "ops.toml", "--force")
    assert forced.code == 0 and forced.json["placeholders"] == ["key", "contracts.app"]
    assert path.read_text().startswith("# smartkeys policy preset: observer")


def test_policy_new_to_stdout_and_a_mistyped_preset(cli, tmp_path):
    printed = cli("policy", "new", "--preset", "admin-in-window", "--out", "-")
    assert printed.code == 0 and printed.out.startswith("# smartkeys policy preset: admin-in-window")
    assert list(tmp_path.glob("*.toml")) == []
    wrong = cli("policy", "new", "--preset", "operater")
    assert wrong.code == 2 and "did you mean 'operator'" in wrong.err and not (tmp_path / "policy.toml").exists()


def test_an_unfilled_preset_is_refused_by_grant_naming_the_field_and_the_fix(cli, delegated, tmp_path):
    assert cli("policy", "new", "--preset", "operator").code == 0
    result = cli("--json", "grant", "--policy", "policy.toml", "--dry-run")
    assert result.code == 2 and result.json["error"]["field"] == "key"
    assert "fix: replace the placeholder with the agent's key address" in result.err


# --------------------------------------------------------------------------- a filled operator preset in use


def _operator_file(cli, tmp_path: Path, agent, usdc, treasury: str, supplier: str) -> Path:
    assert cli("policy", "new", "--preset", "operator", "--out", "ops.toml").code == 0
    path = tmp_path / "ops.toml"
    text = path.read_text()
    for field, value in (("key", agent.address), ("address", usdc.address), ("treasury", treasury),
                         ("supplier", supplier)):
        text = re.sub(rf'^({field}\s*=\s*)"<FILL IN:[^"]*>"', rf'\g<1>"{value}"', text, count=1, flags=re.M)
    path.write_text(text)
    return path


def test_operator_preset_refusals_status_and_audit_speak_of_names_units_and_the_next_use(
        cli, chain, delegated, agent, usdc, tmp_path):
    treasury, supplier, stranger = (chain.accounts[i].address for i in (5, 6, 9))
    policy = _operator_file(cli, tmp_path, agent, usdc, treasury, supplier)
    granted = cli("--json", "grant", "--policy", str(policy))
    assert granted.code == 0, granted.err
    env = {"SMARTKEYS_ACCOUNT": delegated}
    send = ("send", "--token", "USDC", "--policy", str(policy), "--key", "agent", "--via", "direct")

    refused = cli(*send[:1], stranger, "3", *send[1:], env=env)
    assert refused.code == 3 and f"to {stranger} is not on the session's list [treasury, supplier]" in refused.err
    over = cli(*send[:1], treasury, "60", *send[1:], env=env)
    assert over.code == 3 and 'amount = 60 USDC breaks the session\'s rule "amount <= 50 USDC"' in over.err
    assert usdc.functions.balanceOf(stranger).call() == 0
    ok = cli(*send[:1], treasury, "3", *send[1:], env=env)
    assert ok.code == 0, ok.err
    soon = cli(*send[:1], supplier, "1", *send[1:], env=env)
    assert soon.code == 3 and "allows one use every 10 min" in soon.err and "the next use is allowed from" in soon.err

    doc = cli("--json", "status", "--policy", str(policy)).json
    (session,) = doc["sessions"]
    (entry,) = session["argument_rules"]
    to, amount = entry["rules"]
    assert to["values"] == [treasury, supplier] and to["values_text"] == ["treasury", "supplier"]
    assert amount["values"] == ["50000000"] and amount["values_text"] == ["50 USDC"]
    rate = session["rate_limits"]
    assert (rate["min_interval"], rate["uses_per_period"], rate["uses_this_period"]) == (600, 20, 1)
    assert rate["next_use_at"] == rate["last_use"] + 600 and rate["next_use_at_iso"].endswith("Z")
    text = cli("status", "--policy", str(policy)).out
    assert "argument rules" in text and "USDC transfer(address,uint256) where to one of [treasury, supplier], " \
        "amount <= 50 USDC" in text
    assert "rate limits:" in text and "1 used this period, 19 left; next use allowed from " in text
    plain = cli("status").out  # without the policy file: the chain's addresses, still the token's units
    assert f"to one of [{treasury}, {supplier}], amount <= 50 USDC" in plain

    audit = cli("--json", "audit", "--policy", str(policy)).json
    (session,) = audit["sessions"]
    assert session["argument_rules"][0]["rules"][0]["values_text"] == ["treasury", "supplier"]
    assert session["rate_limits"]["next_use_at"] == rate["next_use_at"]
    assert "to one of [treasury, supplier], amount <= 50 USDC" in session["policy_text"]
    assert "at most one use every 10m; at most 20 uses per UTC day" in session["policy_text"]
    audit_text = cli("audit", "--policy", str(policy)).out
    assert "where to one of [treasury, supplier], amount <= 50 USDC" in audit_text
    assert "next use allowed from" in audit_text
