"""Rate limits (``contracts/RateLimits.sol``): a minimum interval between uses and at most N uses per period, each
allowed at its boundary and refused one past it on both session paths, with nothing changed on chain."""

from __future__ import annotations

import pytest
from test_session_budgets import (  # noqa: F401  (path, run, agent_for, target are fixtures)
    agent_for,
    err,
    jump_to,
    next_boundary,
    path,
    run,
    status,
    target,
)

from smartkeys.account import Call
from smartkeys.policy_codec import Permission, SessionPolicy


def ping(target):
    return Call(target.address, 0, target.encode_abi("ping", [1]))


def rate(agent):
    return tuple(agent.contract.functions.sessionLedger(agent.session_id, agent.account).call())


def counter(target):
    return {"counter": lambda: target.functions.counter().call()}


def perm(target):
    return (Permission(target.address, "ping(uint256)"),)


def test_min_interval_refuses_one_second_early_and_allows_at_the_interval(run, agent_for, chain, target):
    agent = agent_for(permissions=perm(target), min_interval=600)
    t0 = chain.time() + 10
    jump_to(chain, t0)
    run(agent, [ping(target)])
    assert rate(agent)[0] == t0
    jump_to(chain, t0 + 599)
    e = run.refused(agent, [ping(target)], "UseTooSoon", counter(target))
    assert (e.lastUse, e.minInterval, e.timestamp) == (t0, 600, t0 + 599)
    jump_to(chain, t0 + 600)
    run(agent, [ping(target)])
    assert rate(agent)[0] == t0 + 600
    assert target.functions.counter().call() == 2


def test_uses_per_period_refuses_the_one_past_the_limit_and_refills_at_the_boundary(run, agent_for, chain, target):
    period = 3_600
    agent = agent_for(permissions=perm(target), uses_per_period=2, use_period=period)
    boundary = next_boundary(chain, period)
    jump_to(chain, boundary - 3)
    run(agent, [ping(target)])
    jump_to(chain, boundary - 2)
    run(agent, [ping(target), ping(target)])  # a batch is one use
    jump_to(chain, boundary - 1)
    e = run.refused(agent, [ping(target)], "UsesPerPeriodReached", counter(target))
    assert (e.limit, e.period, e.used) == (2, period, 2)
    assert rate(agent) == (boundary - 2, 2, boundary // period - 1)
    jump_to(chain, boundary)
    run(agent, [ping(target)])
    assert rate(agent) == (boundary, 1, boundary // period)


def test_a_use_refused_later_in_the_batch_does_not_consume_the_rate(run, agent_for, chain, target):
    agent = agent_for(permissions=perm(target), min_interval=600, uses_per_period=1, use_period=86_400)
    stranger = Call("0x000000000000000000000000000000000000cafE", 0, b"")
    run.refused(agent, [ping(target), stranger], "CallNotAllowed", counter(target))
    assert rate(agent)[:2] == (0, 0)
    run(agent, [ping(target)])


def test_grant_refuses_a_rate_limit_period_without_a_count(owner, session_key, chain, target):
    policy = SessionPolicy(key=session_key.address, valid_after=0, valid_until=chain.time() + 3_600,
                           permissions=perm(target), min_interval=1, gas_budget=10**18)
    raw = bytearray(policy.encode())
    at = len(raw) - 8  # uses_per_period stays 0; give use_period a value
    raw[at + 4:at + 8] = (60).to_bytes(4, "big")
    with pytest.raises(err("InvalidPeriod")):
        owner.execute(owner.address, 0, owner.contract.encode_abi("grantSession", [bytes(raw)]))
