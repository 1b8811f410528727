"""Review 12: an any-selector permission on a capped token silently voids the recipient list of a `transfer`
permission for the same token. The grant refuses an unruled EXACT duplicate "since one without rules would make
the others meaningless" (SmartKeysAccount._checkPermissions), but not an ANY_SELECTOR one, and `load_policy`
accepts the same in a policy file (describe() still prints "where to one of [shop]")."""

from __future__ import annotations

from eth_utils import to_checksum_address
from test_session_budgets import (  # noqa: F401  (path, run, agent_for are fixtures)
    TRANSFER,
    agent_for,
    balance_of,
    path,
    run,
    tcall,
)

from smartkeys.argument_rules import ArgumentRule, RuleOp
from smartkeys.errors import SmartKeysError
from smartkeys.policy_codec import Permission, PermissionMode, TokenCap

SHOP = to_checksum_address("0x000000000000000000000000000000000000beef")
ATTACKER = to_checksum_address("0x000000000000000000000000000000000000bad0")


def test_any_selector_permission_voids_a_recipient_list_on_the_same_token(run, agent_for, token):
    listed = Permission(token.address, TRANSFER, rules=(ArgumentRule(0, RuleOp.ONE_OF, "address", (SHOP,)),))
    wildcard = Permission(token.address, b"\x00" * 4, PermissionMode.ANY_SELECTOR)
    try:
        agent = agent_for(permissions=(listed, wildcard), token_caps=(TokenCap(token.address, 10_000),))
    except SmartKeysError:
        return  # refused at grant: the list cannot be voided (the expected outcome)
    before = balance_of(token, ATTACKER)()
    try:
        run(agent, [tcall(token, "transfer", ATTACKER, 500)])
    except SmartKeysError:
        return
    # expected: refused (grant or use); happened: 500 units left the account for an address not on the list
    assert balance_of(token, ATTACKER)() == before, "transfer outside the recipient list went through"


POLICY = """
key = "0x1111111111111111111111111111111111111111"
valid_for = "24h"

[tokens.USDC]
address = "0x2222222222222222222222222222222222222222"
decimals = 6

[address_book]
shop = "0x000000000000000000000000000000000000bEEF"

[[allow]]
contract = "USDC"
functions = ["transfer(address,uint256)"]
where = { to = ["shop"], amount = "<= 50 USDC" }

[[allow]]
contract = "USDC"
functions = "*"

[limits]
gas_budget = "0.05 ether"

[limits.tokens.USDC]
total = "100 USDC"
"""


def test_policy_file_with_a_wildcard_beside_a_where_entry_is_refused(tmp_path):
    """The careless owner: the file reads as "USDC transfers only to shop, <= 50", the chain allows any recipient
    and any amount up to the cap. Expected: load_policy refuses naming allow[1].functions; happened: accepted."""
    from smartkeys.errors import InvalidInputError
    from smartkeys.policy import load_policy

    f = tmp_path / "p.toml"
    f.write_text(POLICY)
    try:
        model = load_policy(f)
        model.compile(now=1_800_000_000)
    except InvalidInputError:
        return
    raise AssertionError(f"accepted: {model.describe()!r}")
