"""Every place that describes a periodic cap says exactly when it resets: calendar windows aligned on
1970-01-01 UTC (the contract's index is ``timestamp // period``), never a rolling window.

"20 USDC per day" granted 10 s before 00:00 UTC lets 40 USDC move within seconds; the descriptions now say so.
"""

from __future__ import annotations

import re

import pytest

from smartkeys.account import Call
from smartkeys.errors import SmartKeysError
from smartkeys.policy import decompile
from smartkeys.policy_codec import Permission, SessionPolicy, TokenCap
from smartkeys.preflight import SessionState, preflight
from smartkeys.timefmt import next_period_start, period_text, utc_text
from smartkeys.tools import tool_definitions

USDC = "0x2222222222222222222222222222222222222222"
KEY = "0x1111111111111111111111111111111111111111"
MIDNIGHT = 1_764_633_600  # 2025-12-02 00:00:00 UTC
ROLLING = re.compile(r"rolling (24|window)|last 24|any 24|24 hours? (after|since|window)|sliding", re.IGNORECASE)


def _policy(period=86_400):
    return SessionPolicy(key=KEY, valid_after=0, valid_until=MIDNIGHT + 10 * 86_400, max_uses=10,
                         permissions=(Permission(USDC, "transfer(address,uint256)"),),
                         token_caps=(TokenCap(USDC, 100 * 10**6, period, 20 * 10**6),),
                         native_per_call=10**17, native_total=10**18, native_period=period, native_per_period=2 * 10**17,
                         gas_budget=10**16)


@pytest.mark.parametrize("period,rule", [(60, "at the start of every minute"), (3_600, "top of every hour"),
                                         (86_400, "at 00:00 UTC"), (604_800, "Thursdays at 00:00 UTC"),
                                         (7_200, "multiple of 7200 s"), (90, "multiple of 90 s")])
def test_period_text_names_the_reset_and_the_next_one(period, rule):
    now = MIDNIGHT - 10
    text = period_text(period, now)
    assert rule in text and "not a rolling one" in text and not ROLLING.search(text.replace("not a rolling one", ""))
    nxt = next_period_start(now, period)
    assert f"next reset {utc_text(nxt, sep=' ', suffix=' UTC')}" in text
    assert nxt // period == now // period + 1 and (nxt - 1) // period == now // period  # the contract's index


def test_tool_text_for_the_llm_states_the_utc_midnight_reset_and_never_a_rolling_window():
    now = MIDNIGHT - 10
    for fmt in ("openai", "anthropic"):
        for tool in tool_definitions(_policy(), tokens={USDC: ("USDC", 6)}, format=fmt, now=now):
            desc = tool["function"]["description"] if fmt == "openai" else tool["description"]
            assert "20 USDC per UTC day (a calendar window, not a rolling one: resets at 00:00 UTC; " \
                   "next reset 2025-12-02 00:00:00 UTC)" in desc
            assert "0.2 ETH per UTC day" in desc
            assert not ROLLING.search(desc.replace("not a rolling one", ""))


def test_describe_of_the_granted_policy_states_the_reset():
    text = decompile(_policy(), tokens={"USDC": (USDC, 6)}).describe(now=MIDNIGHT - 10)
    assert "20 USDC per UTC day (a calendar window, not a rolling one: resets at 00:00 UTC; next reset " \
           "2025-12-02 00:00:00 UTC)" in text


def test_the_described_reset_is_what_the_preflight_does_two_periods_within_seconds():
    """The text is true: 20 USDC at 23:59:50 and 20 more at 00:00:00 both pass; 1 more USDC is refused."""
    policy = _policy()

    def transfer(amount):
        return [Call(USDC, 0, bytes.fromhex("a9059cbb") + bytes(12) + bytes.fromhex(KEY[2:]) + amount.to_bytes(32, "big"))]

    state = SessionState("0x3333333333333333333333333333333333333333", granted=True)
    charges = preflight(policy, state, transfer(20 * 10**6), now=MIDNIGHT - 10, via_user_op=False)
    state = state.after(policy, charges, now=MIDNIGHT - 10)
    charges = preflight(policy, state, transfer(20 * 10**6), now=MIDNIGHT, via_user_op=False)
    state = state.after(policy, charges, now=MIDNIGHT)
    assert state.tokens[USDC].total_spent == 40 * 10**6  # 40 USDC within 10 seconds, as the text warns
    with pytest.raises(SmartKeysError):
        preflight(policy, state, transfer(10**6), now=MIDNIGHT + 1, via_user_op=False)
