"""Review 1314 (issue 13 kind 2, "what is left"): a revoked session is reported with time and uses left."""
from smartkeys.policy_codec import Permission, TokenCap


def test_revoked_session_has_nothing_left(smartkeys_agent, smartkeys_token, smartkeys_owner):
    """Expected: once revoked, `status` (text and --json) says nothing is left: seconds_left 0 and uses_left 0
    (the key can never be used again). Happened: `status --json` gives the revoked session `seconds_left` 3281,
    `time_left_text` "54 min 41 s" and `uses_left` 1, and the text table shows "4/5 (1 left)" and a LEFT budget
    for a revoked row -- an owner reads that the key still has time and uses."""
    usdc = smartkeys_token.address
    agent = smartkeys_agent(permissions=(Permission(usdc, "transfer(address,uint256)"),),
                            token_caps=(TokenCap(usdc, 5 * 10**6),), max_uses=5)
    smartkeys_owner.revoke(agent.session_id)
    doc = smartkeys_owner.session_report(agent.policy).to_dict()
    assert doc["status"] == "revoked"  # the premise: the report knows it is revoked
    assert doc["seconds_left"] == 0, f"revoked session reports {doc['time_left_text']} left"
    assert doc["uses_left"] == 0, f"revoked session reports {doc['uses_left']} uses left"
