"""Every value the contract accepts can be shown: times up to 2**48 - 1 (year 8,921,556), the widest periods and
amounts. ``datetime`` stops at 9999, and ``tool_definitions`` used to raise a bare ValueError there."""

from __future__ import annotations

import datetime as dt

import pytest

from smartkeys.audit import _iso
from smartkeys.policy import Instant, decompile
from smartkeys.policy_codec import Permission, SessionPolicy, TokenCap
from smartkeys.timefmt import civil_from_days, utc_text
from smartkeys.tools import tool_definitions

U48 = 2**48 - 1
USDC = "0x2222222222222222222222222222222222222222"
END_OF_9999 = 253_402_300_799


def _policy(valid_until, valid_after=0, period=86_400):
    return SessionPolicy(key="0x1111111111111111111111111111111111111111", valid_after=valid_after,
                         valid_until=valid_until, max_uses=2**32 - 1,
                         permissions=(Permission(USDC, "transfer(address,uint256)"),),
                         token_caps=(TokenCap(USDC, 2**112 - 1, period, 2**112 - 1),),
                         native_per_call=2**96 - 1, native_total=2**96 - 1, gas_budget=2**96 - 1)


@pytest.mark.parametrize("valid_until", [END_OF_9999, END_OF_9999 + 1, 2**40, U48])
@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
def test_tool_definitions_show_any_uint48_expiry(valid_until, fmt):
    tools = tool_definitions(_policy(valid_until), tokens={USDC: ("USDC", 6)}, format=fmt)
    text = json_text(tools)
    assert utc_text(valid_until, sep=" ", suffix=" UTC") in text and str(valid_until) in text


def json_text(tools) -> str:
    import json

    return json.dumps(tools)


@pytest.mark.parametrize("period", [1, 86_400, 2**32 - 1])
def test_describe_and_decompile_show_far_times_and_wide_periods(period):
    policy = _policy(U48, period=period)
    text = decompile(policy, tokens={"USDC": (USDC, 6)}).describe(now=1_700_000_000)
    assert "8921556-12-07T10:44:15Z" in text


def test_instant_and_audit_text_for_the_largest_time():
    assert str(Instant(U48)) == "8921556-12-07T10:44:15Z"
    assert _iso(U48) == "8921556-12-07T10:44:15Z"


def test_cli_status_time_for_the_largest_time():
    from smartkeys.cli._commands import _utc

    assert _utc(U48) == "8921556-12-07 10:44:15Z"


def test_utc_text_matches_datetime_wherever_datetime_works():
    for t in (0, 1, 59, 86_399, 951_782_400, 1_700_000_000, END_OF_9999):
        assert utc_text(t) == dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_calendar_beyond_9999_is_continuous_and_gregorian():
    # day after 9999-12-31 is 10000-01-01; 10000 is a leap year (divisible by 400), 10100 is not
    base = END_OF_9999 // 86_400
    assert civil_from_days(base) == (9999, 12, 31) and civil_from_days(base + 1) == (10000, 1, 1)
    feb29_10000 = base + 1 + 31 + 28
    assert civil_from_days(feb29_10000) == (10000, 2, 29)
    days_10100 = base + 1 + sum(366 if (y % 4 == 0 and (y % 100 or y % 400 == 0)) else 365 for y in range(10000, 10100))
    assert civil_from_days(days_10100 + 31 + 28) == (10100, 3, 1)
