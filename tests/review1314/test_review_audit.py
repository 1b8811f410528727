"""Review 1314 (issues 13/14, fresh-user pass): a defect found in the audit's JSON model.

Each test is a failing reproduction of one defect; see the docstrings for expected vs what happened.
"""
import time

import pytest

from smartkeys.audit import build_audit
from smartkeys.errors import get_error_class
from smartkeys.journal import RefusalJournal
from smartkeys.policy_codec import Permission, TokenCap

SHOP = "0x000000000000000000000000000000000000bEEF"


@pytest.fixture
def refused_later(smartkeys_agent, smartkeys_token, smartkeys_bundler, smartkeys_chain, smartkeys_owner,
                  tmp_path):
    """One use, then (a few seconds later, no block in between) a refusal recorded in a journal."""
    usdc = smartkeys_token.address
    agent = smartkeys_agent(permissions=(Permission(usdc, "transfer(address,uint256)"),),
                            token_caps=(TokenCap(usdc, 5 * 10**6),))
    journal = RefusalJournal(tmp_path / "refusals.jsonl")
    agent.journal = journal  # SessionAgent(..., journal=journal) as the README's audit section says
    agent.transfer(usdc, SHOP, 4 * 10**6, via="user_op", bundler=smartkeys_bundler)
    time.sleep(3)  # an agent is refused a little later: a refusal mines no block
    with pytest.raises(get_error_class("TokenSpendCapExceeded")):
        agent.transfer(usdc, SHOP, 4 * 10**6, via="user_op", bundler=smartkeys_bundler)
    return build_audit(smartkeys_chain.w3, smartkeys_owner.address, journal=journal)


def test_audit_json_session_has_the_documented_session_fields(refused_later):
    """README "JSON output": an audit session (`audit` -> sessions[]) has `valid_until` (like status and send),
    and times are unix seconds as integers. Happened: audit sessions have no top-level `valid_until`
    (only policy.valid_until), and refusals[].time is a float (1796222072.3698547)."""
    doc = refused_later.to_dict()
    s = doc["sessions"][0]
    for field in ("session_id", "key", "status", "valid_until", "seconds_left", "time_left_text", "uses",
                  "max_uses", "uses_left", "assets"):
        assert field in s, f"audit sessions[] lacks {field!r}"
    for r in s["refusals"]:
        assert isinstance(r["time"], int), f"refusal time {r['time']!r} is not integer unix seconds"
