"""A policy file may not put ``functions = "*"`` on a contract whose calls carry a ``where`` (review 12, finding 2):
permissions are alternatives, so the wildcard would allow the call with any arguments, and the account refuses the
grant with ``RulesBypassed``. ``parse_policy`` refuses it first, naming the wildcard's field and the fix."""

from __future__ import annotations

import pytest

from smartkeys.errors import InvalidInputError
from smartkeys.policy import parse_policy

KEY = "0x1111111111111111111111111111111111111111"
USDC = "0x2222222222222222222222222222222222222222"
ROUTER = "0x3333333333333333333333333333333333333333"
SHOP = "0x000000000000000000000000000000000000bEEF"
NOW = 1_800_000_000
RULED = {"contract": "USDC", "functions": ["transfer(address,uint256)"], "where": {"to": ["shop"]}}


def policy(*allow):
    return {"key": KEY, "valid_for": "24h", "address_book": {"shop": SHOP}, "contracts": {"router": ROUTER},
            "tokens": {"USDC": {"address": USDC, "decimals": 6}}, "allow": list(allow),
            "limits": {"gas_budget": "0.05 ether", "tokens": {"USDC": {"total": "100 USDC"}}}}


@pytest.mark.parametrize("allow, field, ruled", [
    ((RULED, {"contract": "USDC", "functions": "*"}), "allow[1].functions", "allow[0]"),
    (({"contract": "USDC", "functions": "*"}, RULED), "allow[0].functions", "allow[1]"),
    (({"contract": "USDC", "functions": ["approve(address,uint256)"]}, RULED, {"contract": USDC, "functions": "*"}),
     "allow[2].functions", "allow[1]"),
])
def test_a_wildcard_on_the_contract_of_a_where_entry_is_refused_naming_both_and_the_fix(allow, field, ruled):
    with pytest.raises(InvalidInputError) as info:
        parse_policy(policy(*allow)).compile(now=NOW)
    assert info.value.field == field
    assert ruled in str(info.value) and 'instead of "*"' in str(info.value)


def test_a_wildcard_on_another_contract_or_without_where_is_kept_and_described():
    model = parse_policy(policy(RULED, {"contract": "router", "functions": "*"}))
    compiled = model.compile(now=NOW)
    assert len(compiled.permissions) == 2 and compiled.permissions[0].rules
    assert "to one of [shop]" in model.describe()
    plain = {k: v for k, v in RULED.items() if k != "where"}
    assert len(parse_policy(policy(plain, {"contract": "USDC", "functions": "*"})).compile(now=NOW).permissions) == 2


def test_decompiling_such_a_policy_from_an_older_account_marks_its_where_void():
    """An account that predates RulesBypassed may hold such a session: decompile still shows it, and describe()
    does not claim the recipient list holds."""
    from smartkeys.argument_rules import ArgumentRule, RuleOp
    from smartkeys.policy import decompile
    from smartkeys.policy_codec import Permission, PermissionMode, SessionPolicy, TokenCap, selector_of

    listed = Permission(USDC, selector_of("transfer(address,uint256)"),
                        rules=(ArgumentRule(0, RuleOp.ONE_OF, "address", (SHOP,)),))
    chain_policy = SessionPolicy(key=KEY, valid_after=0, valid_until=2 * NOW, token_caps=(TokenCap(USDC, 10**8),),
                                 permissions=(listed, Permission(USDC, mode=PermissionMode.ANY_SELECTOR)))
    text = decompile(chain_policy, signatures=["transfer(address,uint256)"]).describe(now=NOW)
    assert "VOID: ANY function of it is allowed too" in text, text
    ruled_only = decompile(SessionPolicy(key=KEY, valid_after=0, valid_until=2 * NOW, permissions=(listed,),
                                         token_caps=(TokenCap(USDC, 10**8),)), signatures=["transfer(address,uint256)"])
    assert "VOID" not in ruled_only.describe(now=NOW)
