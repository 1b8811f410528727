"""`grant` and `status` say exactly when a periodic cap resets (00:00 UTC for a day), never a rolling window."""

from __future__ import annotations


def test_grant_and_status_state_the_utc_reset_and_the_next_one(cli, delegated, agent, usdc, tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(f'''
key = "{agent.address}"
valid_for = "7d"

[tokens.USDC]
address = "{usdc.address}"
decimals = 6

[[allow]]
contract = "USDC"
functions = ["transfer(address,uint256)"]

[limits]
max_uses = 5
gas_budget = "0.01 ether"

[limits.tokens.USDC]
total = "100 USDC"
per_period = "20 USDC"
period = "day"
''')
    granted = cli("grant", "--policy", str(path))
    assert granted.code == 0, granted.err
    assert "20 USDC per UTC day (a calendar window, not a rolling one: resets at 00:00 UTC; next reset " in granted.out
    status = cli("status", "--account", delegated)
    assert status.code == 0, status.err
    assert "periodic caps:" in status.out and "resets at 00:00 UTC; next reset " in status.out
    doc = cli("--json", "status", "--account", delegated).json
    (asset,) = [a for a in doc["sessions"][0]["assets"] if a["period"]]
    now = doc["chain"]["timestamp"]
    assert asset["period_resets_at"] % 86_400 == 0 and 0 < asset["period_resets_at"] - now <= 86_400
    assert "rolling" not in asset["period_rule"].replace("not a rolling one", "")
