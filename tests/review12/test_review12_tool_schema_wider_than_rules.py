"""Review 12: tool definitions advertise more than the chain allows when a permission has two rules on the same
argument (AND). The schema keeps the last bound (`maximum` 100 USDC while `amount <= 50 USDC` also holds) and
lists an address in `enum` that a NE rule refuses. Expected: the schema is the intersection (maximum 50 USDC;
enum without treasury); happened: maximum 100000000 and enum [shop, treasury]."""

from __future__ import annotations

from smartkeys.argument_rules import ArgumentRule, RuleOp
from smartkeys.policy_codec import Permission, SessionPolicy, TokenCap
from smartkeys.tools import tool_definitions

USDC = "0x2222222222222222222222222222222222222222"
SHOP = "0x000000000000000000000000000000000000bEEF"
TREASURY = "0x3333333333333333333333333333333333333333"


def _schema(*rules):
    policy = SessionPolicy(
        key="0x1111111111111111111111111111111111111111", valid_after=0, valid_until=2_000_000_000,
        gas_budget=10**17, permissions=(Permission(USDC, "transfer(address,uint256)", rules=rules),),
        token_caps=(TokenCap(USDC, 10**9),))
    (tool,) = tool_definitions(policy, names={SHOP: "shop", TREASURY: "treasury", USDC: "usdc"},
                               tokens={USDC: ("USDC", 6)})
    return tool["function"]["parameters"]["properties"]


def test_two_upper_bounds_on_the_amount_advertise_the_tighter_one():
    props = _schema(ArgumentRule(1, RuleOp.LE, "uint256", (50_000_000,)),
                    ArgumentRule(1, RuleOp.LE, "uint256", (100_000_000,)))
    assert props["amount"]["maximum"] == 50_000_000


def test_a_not_equal_rule_removes_its_address_from_the_recipient_enum():
    props = _schema(ArgumentRule(0, RuleOp.ONE_OF, "address", (SHOP, TREASURY)),
                    ArgumentRule(0, RuleOp.NE, "address", (TREASURY,)))
    assert props["to"]["enum"] == ["shop"]
