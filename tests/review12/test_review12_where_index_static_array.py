"""Review 12: `where` names an argument by its position in the signature's list (policy_where.compile_where:
`index = names.index(name)`), but ArgumentRules reads head word `index`. A static array (or static tuple) before
the ruled argument takes several head words, so the rule checks the wrong word: for
`pay(uint256[2],address,uint256)` with `arg1 = ["treasury"]` (the address), the chain checks xs[1]. An agent puts
the treasury's address in xs[1] and pays anyone. Expected: ArgumentRuleViolated (or the policy refused at load);
happened: the call to a recipient outside the list is allowed on both paths (and by preflight)."""

from __future__ import annotations

from eth_abi import encode
from eth_utils import to_checksum_address
from test_session_budgets import path, run  # noqa: F401  (fixtures)

from smartkeys.account import Call, SessionAgent
from smartkeys.errors import InvalidInputError, SmartKeysError
from smartkeys.policy import parse_policy
from smartkeys.policy_codec import selector_of

SHOP = to_checksum_address("0x000000000000000000000000000000000000c0de")  # no code: the call itself succeeds
TREASURY = to_checksum_address("0x000000000000000000000000000000000000a11c")
ATTACKER = to_checksum_address("0x000000000000000000000000000000000000bad0")
SIG = "pay(uint256[2],address,uint256)"


def test_where_on_an_argument_after_a_static_array_checks_the_right_word(run, chain, owner, session_key, fund):
    fund(session_key.address)
    try:
        model = parse_policy({
            "key": session_key.address, "valid_for": "1h",
            "contracts": {"shop": SHOP}, "address_book": {"treasury": TREASURY},
            "allow": [{"contract": "shop", "functions": [SIG],
                       "where": {"arg1": ["treasury"]}}],  # the address: argument 1 of the list
            "limits": {"gas_budget": "1 ether"},
        })
        policy = model.compile(now=chain.time())
    except InvalidInputError:
        return  # refused at load: acceptable
    (perm,) = policy.permissions
    owner.grant(policy)
    agent = SessionAgent(chain.w3, owner.address, session_key, policy)
    data = selector_of(SIG) + encode(["uint256[2]", "address", "uint256"], [[0, int(TREASURY, 16)], ATTACKER, 10**6])
    try:
        run(agent, [Call(SHOP, 0, data)])
    except SmartKeysError as e:
        assert type(e).__name__ == "ArgumentRuleViolated", e
        return
    raise AssertionError(f"pay(..., to={ATTACKER}) allowed; the rule read head word {perm.rules[0].index} (xs[1])")
