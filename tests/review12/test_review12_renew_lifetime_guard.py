"""Review 12: a policy file refuses a window over MAX_LIFETIME (400 days) unless `allow_long_lifetime = true`,
but `smartkeys renew ID --for 5000d` (a typo for 50d, say) extends the same session to ~13.7 years with no
question asked. Expected: exit 2 naming --for and the 400-day limit (as the policy file does); happened: exit 0,
the session valid until ~2040."""

from __future__ import annotations

from tests.cli.conftest import *  # noqa: F403  (cli, granted, delegated, policy_file fixtures)

from smartkeys.policy import MAX_LIFETIME


def test_renew_for_longer_than_the_policy_lifetime_limit_is_refused(cli, chain, granted, delegated):
    result = cli("--json", "renew", granted, "--for", "5000d")
    now = chain.w3.eth.get_block("latest")["timestamp"]
    renewed_to = result.json["valid_until"] if result.code == 0 else None
    assert result.code == 2 and "--for" in result.err, (
        f"renew accepted a window of {(renewed_to - now) // 86_400 if renewed_to else '?'} days "
        f"(the policy file's limit is {MAX_LIFETIME // 86_400})")
