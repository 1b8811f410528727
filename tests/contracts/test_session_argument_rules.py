"""Argument rules (``contracts/ArgumentRules.sol``): each rule allowed at its boundary and refused one past it,
on both session paths, with ``ArgumentRuleViolated(target, selector, argIndex, op, value)`` and nothing changed.

Rules within a permission are AND; permissions for the same (target, selector) are OR. A rule on the amount of a
capped token never replaces its cap. Malformed rule groups are refused at grant.
"""

from __future__ import annotations

import pytest
from eth_utils import keccak, to_checksum_address
from test_session_budgets import (  # noqa: F401  (path, run, agent_for, target are fixtures)
    RECIPIENT,
    TRANSFER,
    agent_for,
    balance_of,
    err,
    ledger,
    path,
    run,
    status,
    target,
    tcall,
)

from smartkeys.account import Call
from smartkeys.argument_rules import ArgumentRule, RuleOp
from smartkeys.policy_codec import Permission, SessionPolicy, TokenCap, selector_of

TREASURY = to_checksum_address("0x000000000000000000000000000000000000a11c")
ATTACKER = to_checksum_address("0x000000000000000000000000000000000000bad0")
CONFIGURE = selector_of("configure(int24,bool,bytes4,address)")
PING = selector_of("ping(uint256)")


def rule(index, op, abi_type, *values):
    return ArgumentRule(index, op, abi_type, values)


def transfer_agent(agent_for, token, *rules, cap=10_000, extra=()):
    perm = Permission(token.address, TRANSFER, rules=tuple(rules))
    return agent_for(permissions=(perm,) + extra, token_caps=(TokenCap(token.address, cap),))


def watch(token, *holders):
    return {f"balance.{h}": balance_of(token, h) for h in holders}


def check_violation(e, target, selector, index, op, value):
    assert (e.target, bytes(e.selector_), e.argIndex, e.op) == (target, selector, index, int(op))
    assert int.from_bytes(bytes(e.value), "big") == value % 2**256


# =========================================================================== recipients (ONE_OF on address)


def test_one_of_recipient_list_allows_each_listed_address_and_refuses_an_unlisted_one(run, agent_for, token):
    listed = [RECIPIENT, TREASURY] + [to_checksum_address(f"0x{i:040x}") for i in range(0x1000, 0x100E)]  # 16 recipients
    agent = transfer_agent(agent_for, token, rule(0, RuleOp.ONE_OF, "address", *listed))
    for who in (listed[0], listed[-1]):  # first and last of the scan
        before = token.functions.balanceOf(who).call()
        run(agent, [tcall(token, "transfer", who, 7)])
        assert token.functions.balanceOf(who).call() == before + 7
    e = run.refused(agent, [tcall(token, "transfer", ATTACKER, 1)], "ArgumentRuleViolated",
                    watch(token, ATTACKER))
    check_violation(e, token.address, TRANSFER, 0, RuleOp.ONE_OF, int(ATTACKER, 16))


@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_address_scan_reads_exactly_its_list_for_odd_and_even_counts(run, agent_for, token, count):
    """The address scan checks two values per turn: an odd count must not read one field past its list.

    The 20 bytes right after the list are the next rule's head and the start of its bound; a recipient equal to
    them is refused, and every listed address (each position of the pair loop) is allowed.
    """
    listed = [to_checksum_address(f"0x{0x2000 + i:040x}") for i in range(count)]
    bound = int("ab" * 32, 16)
    after = to_checksum_address("0x" + (bytes([1, 2, 0x1F]) + bound.to_bytes(32, "big")[:17]).hex())
    agent = transfer_agent(agent_for, token, rule(0, RuleOp.ONE_OF, "address", *listed),
                           rule(1, RuleOp.LE, "uint256", bound))
    for who in listed:
        before = token.functions.balanceOf(who).call()
        run(agent, [tcall(token, "transfer", who, 3)])
        assert token.functions.balanceOf(who).call() == before + 3
    e = run.refused(agent, [tcall(token, "transfer", after, 1)], "ArgumentRuleViolated", watch(token, after))
    check_violation(e, token.address, TRANSFER, 0, RuleOp.ONE_OF, int(after, 16))


def test_dirty_high_bits_on_a_listed_address_are_refused(run, agent_for, token):
    """A truncating token would send to the listed address's low 20 bytes: the word must be canonical."""
    agent = transfer_agent(agent_for, token, rule(0, RuleOp.ONE_OF, "address", RECIPIENT))
    dirty = (1 << 200) | int(RECIPIENT, 16)
    data = TRANSFER + dirty.to_bytes(32, "big") + (5).to_bytes(32, "big")
    e = run.refused(agent, [Call(token.address, 0, data)], "ArgumentRuleViolated", watch(token, RECIPIENT))
    check_violation(e, token.address, TRANSFER, 0, RuleOp.ONE_OF, dirty)


def test_calldata_too_short_for_the_ruled_argument_is_refused(run, agent_for, token):
    agent = transfer_agent(agent_for, token, rule(1, RuleOp.LE, "uint256", 10))
    data = TRANSFER + int(RECIPIENT, 16).to_bytes(32, "big")  # amount missing
    e = run.refused(agent, [Call(token.address, 0, data)], "ArgumentRuleViolated", watch(token, RECIPIENT))
    check_violation(e, token.address, TRANSFER, 1, RuleOp.LE, 0)


# =========================================================================== amount bounds


@pytest.mark.parametrize(
    "op, bound, ok, refused",
    [
        (RuleOp.LE, (50,), 50, 51),
        (RuleOp.GE, (50,), 50, 49),
        (RuleOp.EQ, (50,), 50, 51),
        (RuleOp.NE, (50,), 49, 50),
        (RuleOp.RANGE, (10, 50), 10, 9),
        (RuleOp.RANGE, (10, 50), 50, 51),
    ],
)
def test_amount_rule_holds_at_its_boundary_and_refuses_one_past(run, agent_for, token, op, bound, ok, refused):
    agent = transfer_agent(agent_for, token, rule(1, op, "uint256", *bound))
    run(agent, [tcall(token, "transfer", RECIPIENT, ok)])
    assert ledger(agent, token.address)[0] == ok
    e = run.refused(agent, [tcall(token, "transfer", RECIPIENT, refused)], "ArgumentRuleViolated",
                    watch(token, RECIPIENT))
    check_violation(e, token.address, TRANSFER, 1, op, refused)


def test_amount_rule_never_replaces_the_token_cap(run, agent_for, token):
    agent = transfer_agent(agent_for, token, rule(1, RuleOp.LE, "uint256", 50), cap=80)
    run(agent, [tcall(token, "transfer", RECIPIENT, 50)])
    e = run.refused(agent, [tcall(token, "transfer", RECIPIENT, 31)], "TokenSpendCapExceeded", watch(token, RECIPIENT))
    assert (e.spent, e.requested, e.cap) == (50, 31, 80)


def test_rules_combine_with_and_and_a_batch_fails_whole_on_one_bad_call(run, agent_for, token):
    agent = transfer_agent(agent_for, token, rule(0, RuleOp.EQ, "address", RECIPIENT),
                           rule(1, RuleOp.LE, "uint256", 50))
    run(agent, [tcall(token, "transfer", RECIPIENT, 50)])
    e = run.refused(agent, [tcall(token, "transfer", RECIPIENT, 5), tcall(token, "transfer", ATTACKER, 5)],
                    "ArgumentRuleViolated", watch(token, RECIPIENT, ATTACKER))
    check_violation(e, token.address, TRANSFER, 0, RuleOp.EQ, int(ATTACKER, 16))
    e = run.refused(agent, [tcall(token, "transfer", RECIPIENT, 51)], "ArgumentRuleViolated", watch(token, RECIPIENT))
    check_violation(e, token.address, TRANSFER, 1, RuleOp.LE, 51)


def test_permissions_for_the_same_call_act_as_or(run, agent_for, token):
    """Small sums to anyone listed, big sums to the treasury only."""
    small = Permission(token.address, TRANSFER, rules=(rule(0, RuleOp.ONE_OF, "address", RECIPIENT, TREASURY),
                                                       rule(1, RuleOp.LE, "uint256", 10)))
    big = Permission(token.address, TRANSFER, rules=(rule(0, RuleOp.EQ, "address", TREASURY),))
    agent = agent_for(permissions=(small, big), token_caps=(TokenCap(token.address, 10_000),))
    run(agent, [tcall(token, "transfer", RECIPIENT, 10)])
    run(agent, [tcall(token, "transfer", TREASURY, 500)])
    e = run.refused(agent, [tcall(token, "transfer", RECIPIENT, 11)], "ArgumentRuleViolated", watch(token, RECIPIENT))
    # the last permission that named the call reports its failed rule
    check_violation(e, token.address, TRANSFER, 0, RuleOp.EQ, int(RECIPIENT, 16))


# =========================================================================== signed, bool, bytesN


def configure(target, tick, flag=True, tag=b"\x12\x34\x56\x78", who=RECIPIENT):
    return Call(target.address, 0, target.encode_abi("configure", [tick, flag, tag, who]))


def test_signed_range_bool_and_bytes_rules_at_their_boundaries(run, agent_for, target):
    perm = Permission(target.address, CONFIGURE, rules=(
        rule(0, RuleOp.RANGE, "int24", -100, -10),
        rule(1, RuleOp.EQ, "bool", True),
        rule(2, RuleOp.ONE_OF, "bytes4", b"\x12\x34\x56\x78", b"\xab\xcd\xef\x01"),
    ))
    agent = agent_for(permissions=(perm,))
    counter = {"counter": lambda: target.functions.counter().call()}
    run(agent, [configure(target, -100), configure(target, -10, tag=b"\xab\xcd\xef\x01")])
    assert target.functions.counter().call() == 2
    for call, index, op, word in (
        (configure(target, -101), 0, RuleOp.RANGE, -101),
        (configure(target, -9), 0, RuleOp.RANGE, -9),
        (configure(target, -50, flag=False), 1, RuleOp.EQ, 0),
        (configure(target, -50, tag=b"\x12\x34\x56\x79"), 2, RuleOp.ONE_OF, int("12345679" + "00" * 28, 16)),
    ):
        e = run.refused(agent, [call], "ArgumentRuleViolated", counter)
        check_violation(e, target.address, CONFIGURE, index, op, word)


# =========================================================================== grant


def _grant_raw(owner, policy: bytes):
    """Grant raw policy bytes through the owner's own ``execute`` (self-call: owner authority)."""
    return owner.execute(owner.address, 0, owner.contract.encode_abi("grantSession", [policy]))


def test_grant_refuses_rules_that_cannot_hold_or_do_not_parse(owner, session_key, chain, target, token):
    base = dict(key=session_key.address, valid_after=0, valid_until=chain.time() + 3600, gas_budget=10**18)
    good = SessionPolicy(permissions=(Permission(target.address, PING, rules=(rule(0, RuleOp.RANGE, "uint8", 1, 2),)),),
                         **base).encode()
    assert good[-6:] == bytes([1, 0, 4, 0, 1, 2])  # count | index | op | type (uint, width 1) | lo | hi
    cases = {
        "inverted range": (good[:-2] + bytes([2, 1]), "InvalidArgumentRule"),
        "unknown op": (good[:-4] + bytes([6]) + good[-3:], "InvalidArgumentRule"),
        "unknown kind": (good[:-3] + bytes([3 << 5]) + good[-2:], "InvalidArgumentRule"),
        "no rules in a group": (good[:-6] + bytes([0]), "InvalidArgumentRule"),
        "truncated": (good[:-1], "InvalidArgumentRule"),
        "trailing byte": (good + b"\x00", "PolicyMalformed"),
    }
    for name, (policy, error) in cases.items():
        with pytest.raises(err(error)):
            _grant_raw(owner, policy)
        live = owner.contract.functions.sessionStatus(keccak(policy)).call()[0]
        assert not live, name
    _grant_raw(owner, good)  # the untouched policy is fine
    # a permission without rules next to one with rules for the same call would make the rules meaningless
    dup = SessionPolicy(permissions=(Permission(token.address, TRANSFER),
                                     Permission(token.address, TRANSFER, rules=(rule(1, RuleOp.LE, "uint256", 5),))),
                        token_caps=(TokenCap(token.address, 100),), **base)
    with pytest.raises(err("DuplicatePermission")):
        _grant_raw(owner, dup.encode())


def test_rules_on_a_wildcard_permission_are_refused_by_codec_and_contract(owner, session_key, chain, target):
    from smartkeys.errors import InvalidInputError
    from smartkeys.policy_codec import PermissionMode

    with pytest.raises(InvalidInputError, match="permission.rules"):
        Permission(target.address, mode=PermissionMode.ANY_SELECTOR, rules=(rule(0, RuleOp.EQ, "uint256", 1),))
    base = dict(key=session_key.address, valid_after=0, valid_until=chain.time() + 3600, gas_budget=10**18)
    good = bytearray(SessionPolicy(permissions=(
        Permission(target.address, PING, rules=(rule(0, RuleOp.EQ, "uint256", 1),)),), **base).encode())
    good[95 + 24] = 1  # mode ANY ...
    good[95 + 20:95 + 24] = bytes(4)  # ... without a selector, rules kept
    with pytest.raises(err("PolicyMalformed")):
        _grant_raw(owner, bytes(good))


# =========================================================================== a wildcard beside a ruled permission


def _ruled_and_wildcard(chain, session_key, token, *, wildcard_first):
    """A recipient list on ``transfer`` of a capped token next to ``"*"`` on the same token (review 12, finding 2)."""
    from smartkeys.policy_codec import PermissionMode

    listed = Permission(token.address, TRANSFER, rules=(rule(0, RuleOp.ONE_OF, "address", TREASURY),))
    wildcard = Permission(token.address, mode=PermissionMode.ANY_SELECTOR)
    perms = (wildcard, listed) if wildcard_first else (listed, wildcard)
    return SessionPolicy(permissions=perms, token_caps=(TokenCap(token.address, 10_000),), key=session_key.address,
                         valid_after=0, valid_until=chain.time() + 3600, gas_budget=10**18)


@pytest.mark.parametrize("wildcard_first", [False, True])
def test_grant_refuses_a_wildcard_on_the_target_of_a_ruled_permission_on_both_owner_paths(
        chain, owner, bundler, session_key, token, path, wildcard_first):
    """Permissions are alternatives, so ``"*"`` on the token would allow ``transfer`` to anyone: the grant is
    refused with ``RulesBypassed(target, selector of the ruled permission)``, whichever comes first, whether the
    owner sends it as a transaction (direct) or a user operation; no session, no ledger, nothing spent."""
    policy = _ruled_and_wildcard(chain, session_key, token, wildcard_first=wildcard_first)
    data = owner.contract.encode_abi("grantSession", [policy.encode()])
    balance, nonce = token.functions.balanceOf(owner.address).call(), chain.w3.eth.get_transaction_count(owner.address)
    with pytest.raises(err("RulesBypassed")) as info:
        if path == "direct":
            owner.execute(owner.address, 0, data)
        else:
            owner.send_user_op([Call(owner.address, 0, data)], bundler=bundler)
    assert (info.value.args["target"], bytes(info.value.args["selector"])) == (token.address, TRANSFER)
    live, *_ = owner.contract.functions.sessionStatus(policy.session_id).call()
    assert not live and not owner.session_id_used(policy.session_id)
    assert token.functions.balanceOf(owner.address).call() == balance
    if path == "direct":  # the refused transaction reverted in simulation: nothing was sent
        assert chain.w3.eth.get_transaction_count(owner.address) == nonce


def test_owner_grant_refuses_a_wildcard_beside_rules_before_sending_and_allows_other_targets(
        chain, owner, session_key, token, target):
    """The SDK mirrors the contract (``token_rules.check_permissions``): ``Owner.grant`` raises the same custom
    error without a transaction; a wildcard on another target, or without rules beside it, is still granted."""
    from smartkeys.policy_codec import PermissionMode

    policy = _ruled_and_wildcard(chain, session_key, token, wildcard_first=False)
    nonce = chain.w3.eth.get_transaction_count(owner.address)
    with pytest.raises(err("RulesBypassed")) as info:
        owner.grant(policy)
    assert (info.value.args["target"], bytes(info.value.args["selector"])) == (token.address, TRANSFER)
    assert "list the target's functions" in str(info.value)
    assert chain.w3.eth.get_transaction_count(owner.address) == nonce
    assert not owner.session_id_used(policy.session_id)
    # controls: the rules stay meaningful when the wildcard is on another contract, or there are no rules
    elsewhere = SessionPolicy(
        permissions=(policy.permissions[0], Permission(target.address, mode=PermissionMode.ANY_SELECTOR)),
        token_caps=policy.token_caps, key=session_key.address, valid_after=0,
        valid_until=chain.time() + 3600, gas_budget=10**18)
    unruled = SessionPolicy(
        permissions=(Permission(token.address, TRANSFER), Permission(token.address, mode=PermissionMode.ANY_SELECTOR)),
        token_caps=policy.token_caps, key=session_key.address, valid_after=0,
        valid_until=chain.time() + 3600, gas_budget=10**18)
    for ok in (elsewhere, unruled):
        owner.grant(ok)
        assert owner.contract.functions.sessionStatus(ok.session_id).call()[0] is True
