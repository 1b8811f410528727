"""The audit of a rotated session counts its predecessor's uses in the rate limit, as the contract does
(``rotateSessionSigner`` copies the rate state): `status` and `audit` agree on the uses left this period."""

from __future__ import annotations

from eth_account import Account

from smartkeys.audit import build_audit
from smartkeys.policy_codec import Permission, TokenCap


def test_audit_carries_the_rate_state_over_a_rotation(smartkeys_chain, smartkeys_owner, smartkeys_agent,
                                                       smartkeys_token, smartkeys_bundler):
    usdc = smartkeys_token.address
    agent = smartkeys_agent(permissions=(Permission(usdc, "transfer(address,uint256)"),),
                            token_caps=(TokenCap(usdc, 5 * 10**6),), uses_per_period=3, use_period=86_400,
                            gas_budget=10**17)
    agent.transfer(usdc, "0x000000000000000000000000000000000000bEEF", 10**6, via="user_op",
                   bundler=smartkeys_bundler)
    successor = smartkeys_owner.rotate_session(agent.policy, Account.create().address)

    report = build_audit(smartkeys_chain.w3, smartkeys_owner.address)
    (session,) = [s for s in report.to_dict()["sessions"] if s["session_id"] == "0x" + successor.session_id.hex()]
    assert session["rate_limits"]["uses_this_period"] == 1
    assert session["rate_limits"]["uses_left_this_period"] == 2
    on_chain = smartkeys_owner.session_report(successor)
    assert on_chain.rate_ledger.period_spent == 1  # uses this period, as the contract copied them
