"""Review 12 probe: ArgumentRules.check (assembly fast paths) against ArgumentRule.holds (the preflight mirror) on
boundary, non-canonical and short calldata, for every kind and several widths. Each permission targets a
code-less address (the call itself always succeeds), so an eth_call of executeAsSession from the key is allowed
exactly when the rule holds on chain."""

from __future__ import annotations

import random

from eth_utils import keccak, to_checksum_address
from test_session_budgets import agent_for  # noqa: F401  (fixture)

from smartkeys.account import Call
from smartkeys.argument_rules import ArgumentRule, RuleOp
from smartkeys.policy_codec import Permission
from smartkeys.tx import REVERT_EXCEPTIONS

SEL = bytes.fromhex("12345678")
VIOLATED = keccak(text="ArgumentRuleViolated(address,bytes4,uint256,uint8,bytes32)")[:4]
A1 = "0x" + "11" * 20
A2 = "0x" + "22" * 20
M = 2**256

RULES = [
    ArgumentRule(0, RuleOp.ONE_OF, "address", (A1, A2, "0x" + "33" * 20)),  # fast path, odd count
    ArgumentRule(1, RuleOp.LE, "uint256", (1000,)),  # fast path
    ArgumentRule(0, RuleOp.EQ, "address", (A1,)),
    ArgumentRule(2, RuleOp.LE, "uint8", (200,)),
    ArgumentRule(1, RuleOp.RANGE, "uint64", (5, 2**64 - 2)),
    ArgumentRule(0, RuleOp.GE, "uint256", (2**255,)),
    ArgumentRule(0, RuleOp.RANGE, "int8", (-100, 100)),
    ArgumentRule(3, RuleOp.LE, "int256", (-5,)),
    ArgumentRule(1, RuleOp.NE, "int24", (-1,)),
    ArgumentRule(0, RuleOp.EQ, "bool", (True,)),
    ArgumentRule(0, RuleOp.NE, "bool", (True,)),
    ArgumentRule(0, RuleOp.ONE_OF, "bytes1", (b"\x01", b"\xff")),
    ArgumentRule(0, RuleOp.LE, "bytes32", (b"\x80" + b"\x00" * 31,)),
    ArgumentRule(0, RuleOp.RANGE, "bytes20", (b"\x10" * 20, b"\x20" * 20)),
    ArgumentRule(0, RuleOp.ONE_OF, "int128", (-(2**127), 2**127 - 1, 0, -1)),
    ArgumentRule(1, RuleOp.ONE_OF, "uint256", (0, M - 1)),
    ArgumentRule(0, RuleOp.GE, "int16", (-300,)),
    ArgumentRule(0, RuleOp.EQ, "bytes4", (b"\xde\xad\xbe\xef",)),
    ArgumentRule(0, RuleOp.ONE_OF, "uint160", (int(A1, 16), 7)),
]


def _words(rule: ArgumentRule, rnd: random.Random) -> list[int]:
    out = [0, 1, M - 1, 2**255, 2**255 - 1, 256, 255, 2**160, 2**160 - 1]
    for w in rule.words:
        for d in (-1, 0, 1):
            out.append((w + d) % M)
        out += [(w | (1 << 200)) % M, w ^ (1 << 255), (w << 8) % M, w >> 8]
    out += [rnd.getrandbits(256) for _ in range(4)]
    return out


def test_chain_and_preflight_agree_on_every_rule_kind(chain, agent_for):
    rnd = random.Random(12)
    targets = [to_checksum_address(f"0x{0xC0DE0000 + i:040x}") for i in range(len(RULES))]
    perms = tuple(Permission(t, SEL, rules=(r,)) for t, r in zip(targets, RULES, strict=True))
    agent = agent_for(permissions=perms)
    w3 = chain.w3
    disagreements = []
    seen = {True: 0, False: 0}
    for target, rule in zip(targets, RULES, strict=True):
        for w in _words(rule, rnd):
            args = [rnd.getrandbits(256) for _ in range(4)]
            args[rule.index] = w
            full = SEL + b"".join(a.to_bytes(32, "big") for a in args)
            for data in (full, full[: 4 + 32 * rule.index + 31], full + b"\x01"):
                try:
                    w3.eth.call({"from": agent.key_address, "to": agent.account,
                                 "data": agent.call_data([Call(target, 0, data)])})
                    onchain = True
                except REVERT_EXCEPTIONS as e:
                    assert repr(VIOLATED)[2:-1] in str(e.args) or VIOLATED.hex() in str(e.args), e.args
                    onchain = False
                seen[onchain] += 1
                if onchain != rule.holds(data):
                    disagreements.append((rule.abi_type, rule.op.name, hex(w), len(data), onchain))
    assert not disagreements, disagreements[:10]
    assert seen[True] > 50 and seen[False] > 50, seen  # both outcomes exercised
