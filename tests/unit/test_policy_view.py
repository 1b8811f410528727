"""What status, audit, refusals and tools say about argument rules and rate limits, offline: recipient lists
by their address-book names, bounds in the token's units, and when the rate limits allow the next use (at
each boundary of ``RateLimits.sol``: ``t >= last + min_interval`` and fewer than N uses in ``t // period``)."""

from __future__ import annotations

import pytest
from test_argument_rules_policy import ACCOUNT, ATTACKER, KEY, OTHER, POLICY, TREASURY, USDC, transfer

from smartkeys.argument_rules import ArgumentRule, RuleOp
from smartkeys.errors import InvalidInputError, get_error_class
from smartkeys.policy import decompile, parse_policy, policy_to_toml
from smartkeys.policy_codec import Permission, SessionPolicy, TokenCap, selector_of
from smartkeys.policy_view import next_use_at, rate_view, rules_view
from smartkeys.preflight import Ledger, SessionState, preflight
from smartkeys.refusals import Units, explain
from smartkeys.safe_files import tomllib
from smartkeys.tools import tool_definitions

DAY = 86_400
MIDNIGHT = 1_800_000_000 // DAY * DAY + DAY  # a UTC midnight
NAMES = {TREASURY: "treasury"}
TOKENS = {USDC: ("USDC", 6)}


def rated(min_interval=600, per_day=2) -> SessionPolicy:
    return parse_policy(dict(POLICY, limits=dict(POLICY["limits"], every=f"{min_interval}s", uses_per_day=per_day))
                        ).compile(now=MIDNIGHT - 5_000)


# --------------------------------------------------------------------------- next use


def test_next_use_is_now_for_a_fresh_session():
    assert next_use_at(rated(), Ledger(), MIDNIGHT - 100) == MIDNIGHT - 100


def test_next_use_waits_the_interval_to_the_second_and_agrees_with_preflight():
    policy = rated()
    state = SessionState.fresh(policy, ACCOUNT, now=MIDNIGHT - 5_000)
    state = state.after(policy, preflight(policy, state, [transfer(OTHER, 1)], now=MIDNIGHT - 4_000,
                                          via_user_op=False), now=MIDNIGHT - 4_000)
    nxt = next_use_at(policy, state.rate_ledger, MIDNIGHT - 3_900)
    assert nxt == MIDNIGHT - 4_000 + 600
    with pytest.raises(get_error_class("UseTooSoon")):
        preflight(policy, state, [transfer(OTHER, 1)], now=nxt - 1, via_user_op=False)
    preflight(policy, state, [transfer(OTHER, 1)], now=nxt, via_user_op=False)


def test_next_use_after_the_days_uses_is_the_next_utc_midnight_and_agrees_with_preflight():
    policy = rated(min_interval=60, per_day=2)
    state = SessionState.fresh(policy, ACCOUNT, now=MIDNIGHT - 5_000)
    for t in (MIDNIGHT - 4_000, MIDNIGHT - 3_000):
        state = state.after(policy, preflight(policy, state, [transfer(OTHER, 1)], now=t, via_user_op=False), now=t)
    nxt = next_use_at(policy, state.rate_ledger, MIDNIGHT - 2_000)
    assert nxt == MIDNIGHT
    with pytest.raises(get_error_class("UsesPerPeriodReached")):
        preflight(policy, state, [transfer(OTHER, 1)], now=nxt - 1, via_user_op=False)
    preflight(policy, state, [transfer(OTHER, 1)], now=nxt, via_user_op=False)


def test_next_use_takes_the_later_of_the_interval_and_the_period_reset():
    policy = rated(min_interval=600, per_day=1)
    ledger = Ledger(MIDNIGHT - 10, 1, (MIDNIGHT - 10) // DAY)  # the day's one use, ten seconds before midnight
    assert next_use_at(policy, ledger, MIDNIGHT - 5) == MIDNIGHT - 10 + 600


def test_rate_view_gives_the_limits_the_period_and_the_next_use_in_json_and_words():
    policy = rated()
    view = rate_view(policy, Ledger(MIDNIGHT - 4_000, 2, (MIDNIGHT - 4_000) // DAY), MIDNIGHT - 3_000)
    assert (view["min_interval"], view["uses_per_period"], view["use_period"]) == (600, 2, DAY)
    assert (view["uses_this_period"], view["uses_left_this_period"]) == (2, 0)
    assert view["next_use_at"] == view["period_resets_at"] == MIDNIGHT
    assert view["last_use"] == MIDNIGHT - 4_000 and view["next_use_in_text"] == "50 min"
    assert "at most one use every 10 min" in view["text"] and "next use allowed from" in view["text"]
    assert rate_view(policy)["text"].startswith("at most one use every 10 min; at most 2 uses per UTC day")
    assert rate_view(parse_policy(dict(POLICY, limits={"tokens": POLICY["limits"]["tokens"]})).compile(
        now=MIDNIGHT)) is None


# --------------------------------------------------------------------------- rules


def test_rules_view_names_recipients_and_gives_bounds_in_token_units_with_exact_base_units():
    (entry,) = rules_view(rated(), names=NAMES, tokens=TOKENS)
    assert (entry["target"], entry["target_name"], entry["function"]) == (USDC, "USDC", "transfer(address,uint256)")
    to, amount = entry["rules"]
    assert (to["argument"], to["op"], to["values"], to["values_text"]) == (
        "to", "one_of", [TREASURY, OTHER], ["treasury", OTHER])
    assert (amount["argument"], amount["op"], amount["values"], amount["values_text"]) == (
        "amount", "le", ["50000000"], ["50 USDC"])
    assert entry["text"] == f"USDC transfer(address,uint256) where to one of [treasury, {OTHER}], amount <= 50 USDC"
    (bare,) = rules_view(rated())  # nothing known: addresses and base units, never a guess
    assert bare["rules"][1]["values_text"] == ["50000000"] and bare["target_name"] is None


def test_decompile_keeps_where_and_rate_limits_so_describe_shows_them_and_compile_round_trips():
    model = parse_policy(POLICY)
    policy = model.compile(now=MIDNIGHT)
    again = decompile(policy, tokens={"USDC": (USDC, 6)}, address_book=model.address_book)
    assert again.compile(now=MIDNIGHT) == policy
    text = again.describe()
    assert f"where to one of [treasury, {OTHER}], amount <= 50 USDC" in text
    assert "at most one use every 10m; at most 20 uses per UTC day" in text
    assert decompile(policy).compile(now=MIDNIGHT) == policy  # names unknown: still the same policy


def test_decompile_refuses_rules_it_cannot_show_rather_than_showing_less():
    rules = (ArgumentRule(2, RuleOp.LE, "uint256", (5,)),)
    odd = SessionPolicy(key=KEY, valid_after=0, valid_until=MIDNIGHT, token_caps=(TokenCap(USDC, 1),),
                        permissions=(Permission(USDC, selector_of("pay(address,address,uint256)"), rules=rules),))
    with pytest.raises(InvalidInputError) as info:
        decompile(odd)
    assert info.value.field == "signatures" and "signatures=[" in str(info.value)
    assert "where arg2 <= 5" in decompile(odd, signatures=["pay(address,address,uint256)"]).describe()


def test_a_dumped_policy_keeps_its_address_book_rules_and_rate_limits():
    model = parse_policy(POLICY)
    assert parse_policy(tomllib.loads(policy_to_toml(model.to_dict()))) == model


# --------------------------------------------------------------------------- refusals in words


def _violation(policy: SessionPolicy, call) -> BaseException:
    state = SessionState.fresh(policy, ACCOUNT, now=MIDNIGHT - 5_000)
    with pytest.raises(get_error_class("ArgumentRuleViolated")) as info:
        preflight(policy, state, [call], now=MIDNIGHT - 4_000, via_user_op=False)
    return info.value


def test_a_recipient_off_the_list_is_refused_in_words_with_the_lists_names():
    policy = rated()
    text = explain(_violation(policy, transfer(ATTACKER, 1)), Units(tokens=TOKENS, policy=policy, names=NAMES))
    assert text == (f"transfer(address,uint256) on USDC (0x2222…2222): to {ATTACKER} is not on the session's list "
                    f"[treasury, {OTHER}]; use one of them, or ask the owner to add {ATTACKER} to the policy's list")


def test_an_amount_over_the_bound_is_refused_in_the_tokens_units():
    policy = rated()
    text = explain(_violation(policy, transfer(OTHER, 50 * 10**6 + 1)), Units(tokens=TOKENS, policy=policy))
    assert 'amount = 50.000001 USDC breaks the session\'s rule "amount <= 50 USDC"; use at most 50 USDC' in text


def test_rate_limit_refusals_say_when_the_next_use_is_allowed():
    too_soon = get_error_class("UseTooSoon")(lastUse=MIDNIGHT - 100, minInterval=600, timestamp=MIDNIGHT - 40)
    assert explain(too_soon) == (
        "the session allows one use every 10 min and was last used at " + _utc(MIDNIGHT - 100)
        + "; the next use is allowed from " + _utc(MIDNIGHT + 500) + " (in 9 min): wait until then")
    reached = get_error_class("UsesPerPeriodReached")(limit=20, period=DAY, used=20)
    text = explain(reached, now=MIDNIGHT - 60)
    assert text.startswith("the session's 20 uses per UTC day are used up (20 used); the next use is allowed from "
                           + _utc(MIDNIGHT) + " (in 1 min)")


def _utc(t: int) -> str:
    from smartkeys.timefmt import utc_text

    return utc_text(t, sep=" ", suffix=" UTC")


# --------------------------------------------------------------------------- tools


def test_tool_description_says_the_next_use_waits_for_the_next_utc_day_once_the_days_uses_are_made():
    policy = rated(min_interval=60, per_day=1)
    state = SessionState.fresh(policy, ACCOUNT, now=MIDNIGHT - 5_000)
    state = state.after(policy, preflight(policy, state, [transfer(OTHER, 1)], now=MIDNIGHT - 4_000,
                                          via_user_op=False), now=MIDNIGHT - 4_000)
    (tool,) = tool_definitions(policy, names=NAMES, tokens=TOKENS, state=state, now=MIDNIGHT - 3_000)
    description = tool["function"]["description"]
    assert "(0 left in this one)" in description
    assert f"The next use is allowed from {_utc(MIDNIGHT)} (unix {MIDNIGHT}); a use before then is refused." \
        in description
    assert tool["function"]["parameters"]["properties"]["to"]["enum"] == ["treasury", OTHER]
    fresh = SessionState.fresh(policy, ACCOUNT, now=MIDNIGHT - 5_000)
    (tool,) = tool_definitions(policy, names=NAMES, tokens=TOKENS, state=fresh, now=MIDNIGHT - 3_000)
    assert "The rate limits allow a use now." in tool["function"]["description"]
